// The document step of identity_document sessions (API.md section 4): after the face,
// the rear camera photographs the document inside a card outline, with live hints
// (light, glare, blur, hold steady), then its back when the server asks for it.
// Each side is one JPEG, sealed for the ``document`` route and dropped after sending.

import { sleep } from './api.js';
import { CameraError, grabJpeg, openCamera, stopCamera } from './camera.js';
import { DocumentGuide, adviseDocument } from './docguide.js';
import * as embed from './embed.js';
import { failed, primaryCode, retryable, showFailure, succeed } from './outcome.js';
import * as ui from './ui.js';

const CAMERA_FAIL = -7;
const DOCUMENT_SCAN_ERROR = -23;
const SAMPLE_MS = 150;
const STEADY_MS = 1200;           // the hints must say "ready" this long before the photo
const GUIDE_TIMEOUT_MS = 20000;   // then take it anyway: the server has the last word
const DOCUMENT_WIDTH = 1280;      // MRZ characters need pixels: up to 1280 px wide
const DOCUMENT_QUALITY = 0.95;

async function settle(guide) {
  const started = performance.now();
  let readySince = null;
  for (;;) {
    const advice = adviseDocument(guide.measure());
    ui.documentGuide(advice.key, advice.state);
    const now = performance.now();
    if (advice.ready) {
      readySince ??= now;
      if (now - readySince >= STEADY_MS) return;
    } else {
      readySince = null;
    }
    if (now - started >= GUIDE_TIMEOUT_MS) return;
    await sleep(SAMPLE_MS);
  }
}

async function photograph(side) {
  ui.showDocument(side);
  ui.documentGuide('camera.opening');
  const video = ui.documentVideo();
  let stream;
  try {
    stream = await openCamera(video, { facingMode: 'environment', width: 1280, height: 720 });
  } catch (error) {
    throw error instanceof CameraError ? error : new CameraError(error?.name || 'Error');
  }
  try {
    await settle(new DocumentGuide(video));
    ui.documentGuide('doc.capturing', 'busy');
    return grabJpeg(video, DOCUMENT_QUALITY, DOCUMENT_WIDTH);
  } finally {
    stopCamera(stream);
  }
}

/** Photograph and send ``side`` ("front" or "back"), then follow the server's answer. */
export async function run(ctx, side = 'front') {
  embed.post('IN_PROGRESS', side === 'front' ? 'document' : 'document-back');
  let image;
  try {
    image = await photograph(side);
  } catch (error) {
    const reason = error instanceof CameraError ? error.reason : (error?.name || 'Error');
    await ctx.reporter.report(CAMERA_FAIL, `document camera: ${reason}`).catch(() => null);
    failed(CAMERA_FAIL);
    return;
  }
  ui.show('sending');
  let answer;
  try {
    answer = await ctx.api.document(await ctx.sealer.seal('document', { side, image }));
  } catch (error) {
    showFailure(ctx, error);
    return;
  } finally {
    image = null;
  }
  if (answer.status === 'SUCCESS') {
    succeed(answer.redirectURL);
  } else if (answer.status === 'IN_PROGRESS' && answer.next === 'back') {
    await run(ctx, 'back');
  } else if (answer.status === 'IN_PROGRESS') {
    retryable(ctx, answer, DOCUMENT_SCAN_ERROR, () => run(ctx, side));
  } else {
    failed(primaryCode(answer.errorCodes || []));
  }
}
