// Live guidance from cheap measurements of the preview: brightness (mean luma),
// movement (frame difference) and, where the browser has the Shape Detection API,
// whether one face sits in the oval. Advice only: the server decides.

export const DARK_LUMA = 50;         // mean luma (0-255) below which we ask for light
export const STILL_DIFFERENCE = 7;   // mean luma change between samples above which we ask to hold still
const SAMPLE_W = 80;
const SAMPLE_H = 60;

export class Guide {
  constructor(video) {
    this.video = video;
    this.canvas = document.createElement('canvas');
    this.canvas.width = SAMPLE_W;
    this.canvas.height = SAMPLE_H;
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
    this.previous = null;
    this.detector = null;
    if ('FaceDetector' in window) {
      try {
        this.detector = new window.FaceDetector({ fastMode: true, maxDetectedFaces: 2 });
      } catch (error) {
        this.detector = null;
      }
    }
  }

  /** ``{luma, motion, faces, centred}``; faces/centred are null without a detector. */
  async measure() {
    this.context.drawImage(this.video, 0, 0, SAMPLE_W, SAMPLE_H);
    const { data } = this.context.getImageData(0, 0, SAMPLE_W, SAMPLE_H);
    const luma = new Float32Array(SAMPLE_W * SAMPLE_H);
    let sum = 0;
    for (let i = 0, p = 0; i < data.length; i += 4, p += 1) {
      luma[p] = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      sum += luma[p];
    }
    let motion = 0;
    if (this.previous) {
      for (let p = 0; p < luma.length; p += 1) motion += Math.abs(luma[p] - this.previous[p]);
      motion /= luma.length;
    }
    this.previous = luma;
    let faces = null;
    let centred = null;
    if (this.detector) {
      try {
        const found = await this.detector.detect(this.video);
        faces = found.length;
        if (faces === 1) {
          const box = found[0].boundingBox;
          const cx = (box.x + box.width / 2) / this.video.videoWidth;
          const cy = (box.y + box.height / 2) / this.video.videoHeight;
          centred = Math.abs(cx - 0.5) < 0.15 && Math.abs(cy - 0.46) < 0.18
            && box.width / this.video.videoWidth > 0.2;
        }
      } catch (error) {
        this.detector = null;
      }
    }
    return { luma: sum / luma.length, motion, faces, centred };
  }
}

/** The guidance key for a measurement, and whether capture may go ahead. */
export function advise(m) {
  if (m.luma < DARK_LUMA) return { key: 'guide.dark', ready: false, state: 'warn' };
  if (m.faces === 0) return { key: 'guide.noFace', ready: false, state: 'warn' };
  if (m.faces > 1) return { key: 'guide.manyFaces', ready: false, state: 'warn' };
  if (m.centred === false) return { key: 'guide.centre', ready: false, state: 'warn' };
  if (m.motion > STILL_DIFFERENCE) return { key: 'guide.still', ready: false, state: 'warn' };
  return { key: 'guide.good', ready: true, state: 'ready' };
}
