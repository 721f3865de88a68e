// Live guidance for photographing an identity document: brightness, glare (blown-out
// highlights on the laminate), sharpness (focus and motion blur) and steadiness,
// measured inside the card outline on a small copy of the preview. Advice only: the
// server reads the document and has the last word.

export const DARK_LUMA = 50;          // mean luma (0-255) below which we ask for light
export const GLARE_LUMA = 248;        // a pixel this bright is a reflection, not print
export const GLARE_SHARE = 0.02;      // more than 2 % of the card blown out: glare
// Mean absolute Laplacian inside the outline, measured on generated passports in a
// 640x480 frame: sharp 22-25, Gaussian blur sigma 2.5 px 10, sigma 4 px 6; an empty desk 0.
export const SHARP_EDGES = 12;        // below: blurred (focus or motion)
export const EMPTY_EDGES = 3;         // below: nothing printed in the outline
export const STILL_DIFFERENCE = 5;    // mean luma change between samples: hold steady
const SAMPLE_W = 160;
const SAMPLE_H = 120;
// The outline in the 4:3 preview (fractions of the frame; css .card-outline matches):
// 1.43:1, a passport data page; an ID-1 card (1.59:1) fits inside it.
export const OUTLINE = { x: 0.06, y: 0.09, w: 0.88, h: 0.82 };

export class DocumentGuide {
  constructor(video) {
    this.video = video;
    this.canvas = document.createElement('canvas');
    this.canvas.width = SAMPLE_W;
    this.canvas.height = SAMPLE_H;
    this.context = this.canvas.getContext('2d', { willReadFrequently: true });
    this.previous = null;
  }

  /** ``{luma, glare, sharpness, motion}`` inside the outline. */
  measure() {
    this.context.drawImage(this.video, 0, 0, SAMPLE_W, SAMPLE_H);
    const x0 = Math.round(OUTLINE.x * SAMPLE_W);
    const y0 = Math.round(OUTLINE.y * SAMPLE_H);
    const w = Math.round(OUTLINE.w * SAMPLE_W);
    const h = Math.round(OUTLINE.h * SAMPLE_H);
    const { data } = this.context.getImageData(x0, y0, w, h);
    const luma = new Float32Array(w * h);
    let sum = 0;
    let bright = 0;
    for (let i = 0, p = 0; i < data.length; i += 4, p += 1) {
      luma[p] = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      sum += luma[p];
      if (luma[p] >= GLARE_LUMA) bright += 1;
    }
    let edges = 0;
    for (let y = 1; y < h - 1; y += 1) {
      for (let x = 1; x < w - 1; x += 1) {
        const p = y * w + x;
        edges += Math.abs(4 * luma[p] - luma[p - 1] - luma[p + 1] - luma[p - w] - luma[p + w]);
      }
    }
    let motion = 0;
    if (this.previous && this.previous.length === luma.length) {
      for (let p = 0; p < luma.length; p += 1) motion += Math.abs(luma[p] - this.previous[p]);
      motion /= luma.length;
    }
    this.previous = luma;
    return {
      luma: sum / luma.length,
      glare: bright / luma.length,
      sharpness: edges / Math.max(1, (w - 2) * (h - 2)),
      motion,
    };
  }
}

/** The guidance key for a measurement, and whether the photo may be taken. */
export function adviseDocument(m) {
  if (m.luma < DARK_LUMA) return { key: 'doc.dark', ready: false, state: 'warn' };
  if (m.glare > GLARE_SHARE) return { key: 'doc.glare', ready: false, state: 'warn' };
  if (m.motion > STILL_DIFFERENCE) return { key: 'doc.steady', ready: false, state: 'warn' };
  if (m.sharpness < EMPTY_EDGES) return { key: 'doc.place', ready: false, state: 'warn' };
  if (m.sharpness < SHARP_EDGES) return { key: 'doc.blur', ready: false, state: 'warn' };
  return { key: 'doc.good', ready: true, state: 'ready' };
}
