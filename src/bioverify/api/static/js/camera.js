// The camera: open it (the front one for the face, the rear one for a document),
// check it delivers frames, grab JPEG frames.

const FIRST_FRAME_TIMEOUT_MS = 6000;
const MAX_FRAME_WIDTH = 640;

/** The camera could not be opened or read; ``reason`` is the browser's error name. */
export class CameraError extends Error {
  constructor(reason) {
    super(`camera failure: ${reason}`);
    this.name = 'CameraError';
    this.reason = reason;
  }
}

function firstFrame(video, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new CameraError('NoFrames')), timeoutMs);
    const check = () => {
      if (video.videoWidth > 0 && video.readyState >= 2) {
        clearTimeout(timer);
        resolve();
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  });
}

/** Open a camera into ``video`` (user-facing unless told); throws CameraError. */
export async function openCamera(video, { facingMode = 'user', width = 640, height = 480 } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) throw new CameraError('NoMediaDevices');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode, width: { ideal: width }, height: { ideal: height } },
    });
  } catch (error) {
    throw new CameraError(error?.name || 'GetUserMediaFailed');
  }
  video.srcObject = stream;
  try {
    await video.play();
    await firstFrame(video, FIRST_FRAME_TIMEOUT_MS);
  } catch (error) {
    stopCamera(stream);
    throw error instanceof CameraError ? error : new CameraError(error?.name || 'PlayFailed');
  }
  return stream;
}

export function stopCamera(stream) {
  for (const track of stream?.getTracks?.() || []) track.stop();
}

const canvas = document.createElement('canvas');

/** The current frame as standard base64 JPEG (not mirrored; at most ``maxWidth`` px wide). */
export function grabJpeg(video, quality = 0.88, maxWidth = MAX_FRAME_WIDTH) {
  const scale = Math.min(1, maxWidth / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  const url = canvas.toDataURL('image/jpeg', quality);
  return url.slice(url.indexOf(',') + 1);
}
