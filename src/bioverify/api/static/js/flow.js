// The capture itself: camera, live guidance, the burst of frames (passive, or the
// active-liveness movements in order), encrypted submission, and the outcome.
// Loaded with a dynamic import() so that a failure to load it is reported (-20).

import { sleep } from './api.js';
import { CameraError, grabJpeg, openCamera, stopCamera } from './camera.js';
import * as embed from './embed.js';
import { Guide, advise } from './guidance.js';
import { collectIndicators, deviceInfo } from './integrity.js';
import { failed, primaryCode, retryable, showFailure, succeed } from './outcome.js';
import * as ui from './ui.js';

const CAMERA_FAIL = -7;
const FACE_SCAN_ERROR = -22;

const SAMPLE_MS = 120;          // guidance refresh
const STEADY_MS = 900;          // guidance must say "ready" this long before capturing
const GUIDE_TIMEOUT_MS = 12000; // then capture anyway: the server has the last word
const PASSIVE_FRAMES = 4;       // the server takes 1 to 5
const PASSIVE_GAP_MS = 180;
const ACTIVE_MAX_FRAMES = 24;   // the server's limit for active liveness
const BASELINE_FRAMES = 2;      // looking straight at the camera, before the first step
const STEP_MS = 2000;           // time given to each movement
const MAX_FRAMES_PER_STEP = 6;
const BLINK_FRAMES = 12;        // a lid closes in ~100 ms: BLINK is sampled faster
const BLINK_GAP_MS = 125;       // (engine/burst_layout.py mirrors this layout)
const CHALLENGE_MARGIN_MS = 30000;

async function settle(guide) {
  const started = performance.now();
  let readySince = null;
  for (;;) {
    const advice = advise(await guide.measure());
    ui.guide(advice.key, advice.state);
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

async function passiveBurst(video) {
  ui.guide('guide.capturing', 'busy');
  const frames = [];
  for (let i = 0; i < PASSIVE_FRAMES; i += 1) {
    if (i) await sleep(PASSIVE_GAP_MS);
    frames.push(grabJpeg(video));
  }
  return { frames };
}

async function activeBurst(video, challenge) {
  const steps = challenge.steps;
  const blinks = steps.filter((step) => step === 'BLINK').length;
  const perStep = Math.max(2, Math.min(MAX_FRAMES_PER_STEP,
    Math.floor((ACTIVE_MAX_FRAMES - BASELINE_FRAMES - blinks * BLINK_FRAMES)
      / Math.max(1, steps.length - blinks))));
  const frames = [];
  const frameTimes = [];
  const began = performance.now();
  const grab = () => {
    let at = Math.round(performance.now() - began);
    if (frameTimes.length && at <= frameTimes[frameTimes.length - 1]) at = frameTimes[frameTimes.length - 1] + 1;
    frames.push(grabJpeg(video, 0.85));
    frameTimes.push(at);
  };
  ui.steps(steps, -1);
  ui.guide('guide.lookAtCamera', 'busy');
  for (let i = 0; i < BASELINE_FRAMES; i += 1) {
    if (i) await sleep(STEP_MS / MAX_FRAMES_PER_STEP);
    grab();
  }
  for (const [index, step] of steps.entries()) {
    ui.steps(steps, index);
    ui.guide(`step.${step}`, 'busy');
    document.getElementById('guidance').dataset.step = step;
    const count = step === 'BLINK' ? BLINK_FRAMES : perStep;
    for (let k = 0; k < count; k += 1) {
      await sleep(step === 'BLINK' ? BLINK_GAP_MS : STEP_MS / perStep);
      grab();
    }
  }
  ui.steps(steps, steps.length);
  delete document.getElementById('guidance').dataset.step;
  return { frames, frameTimes, challengeId: challenge.id };
}

async function submit(ctx, burst) {
  ui.show('sending');
  embed.post('IN_PROGRESS', 'checking');
  let answer;
  try {
    const envelope = await ctx.sealer.seal('capture', {
      ...burst, deviceInfo: deviceInfo(), indicators: ctx.reporter.indicators,
    });
    answer = await ctx.api.capture(envelope);
  } catch (error) {
    showFailure(ctx, error);
    return;
  }
  if (answer.status === 'SUCCESS') {
    succeed(answer.redirectURL);
  } else if (answer.status === 'IN_PROGRESS' && answer.next === 'document') {
    // The face passed; an identity_document session goes on with the document.
    await runDocument(ctx, 'front');
  } else if (answer.status === 'IN_PROGRESS') {
    retryable(ctx, answer, FACE_SCAN_ERROR, () => ctx.again());
  } else {
    failed(primaryCode(answer.errorCodes || []));
  }
}

async function cameraFailed(ctx, error) {
  const reason = error instanceof CameraError ? error.reason : (error?.name || 'Error');
  ctx.reporter.indicators = await collectIndicators();
  try {
    await ctx.reporter.report(CAMERA_FAIL, `camera: ${reason}`);
  } catch (reportError) {
    // The remedy is the same whether or not the report got through.
  }
  failed(CAMERA_FAIL);
}

/** The document step, loaded when a session needs it. */
async function runDocument(ctx, side) {
  const step = await import('./document.js');
  await step.run(ctx, side);
}

/** Run one capture attempt of the loaded session ``ctx.session``. */
export async function run(ctx) {
  const { session } = ctx;
  if (session.next === 'document') {
    // The face passed before this load (a retry, or the page opened again).
    await runDocument(ctx, 'front');
    return;
  }
  const challenge = session.challenge || null;
  if (challenge && Date.parse(challenge.expiresAt) - Date.now() < CHALLENGE_MARGIN_MS) {
    await ctx.again();  // a new load issues a new challenge
    return;
  }
  ui.show('camera');
  ui.steps([], -1);
  ui.guide('camera.opening');
  let stream;
  try {
    stream = await openCamera(ui.video());
  } catch (error) {
    await cameraFailed(ctx, error);
    return;
  }
  let burst;
  embed.post('IN_PROGRESS', 'capturing');
  try {
    ctx.reporter.indicators = await collectIndicators(stream);
    await settle(new Guide(ui.video()));
    burst = challenge ? await activeBurst(ui.video(), challenge) : await passiveBurst(ui.video());
  } finally {
    stopCamera(stream);
  }
  await submit(ctx, burst);
}
