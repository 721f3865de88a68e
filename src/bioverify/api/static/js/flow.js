// The capture itself: camera, live guidance, the burst of frames (passive, or the
// active-liveness movements in order), encrypted submission, and the outcome.
// Loaded with a dynamic import() so that a failure to load it is reported (-20).

import { HttpError, sleep } from './api.js';
import { CameraError, grabJpeg, openCamera, stopCamera } from './camera.js';
import * as embed from './embed.js';
import { Guide, advise } from './guidance.js';
import { t } from './i18n.js';
import { collectIndicators, deviceInfo } from './integrity.js';
import * as ui from './ui.js';

const CAMERA_FAIL = -7;
const MODEL_LOAD_FAILED = -20;
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
const REDIRECT_DELAY_MS = 2500;
const FAILED_REDIRECT_DELAY_MS = 5000; // time to read the remedy first

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

/** The code a failed answer is about: its last fatal code, else its last code. */
function primaryCode(codes) {
  const fatal = codes.filter((code) => ui.codeInfo(code)?.kind === 'fatal');
  return (fatal.length ? fatal : codes)[Math.max(0, (fatal.length ? fatal : codes).length - 1)];
}

/** The catalogue name of ``code`` (the redirect's and postMessage's ``reason``). */
function reasonOf(code) {
  return ui.codeInfo(code)?.name || String(code);
}

/** Whether a failed answer ended the session (a fatal code, or an outcome 422). */
function ended(error) {
  return error.status === 422 || error.codes.some((code) => ui.codeInfo(code)?.kind === 'fatal');
}

function succeed(redirectURL) {
  const target = embed.finish('SUCCESS', 'success', redirectURL || undefined);
  ui.showSuccess(target);
  embed.leaveTo(target, REDIRECT_DELAY_MS);
}

/** The session failed with ``code``: the outcome screen, the parent told, the redirect. */
function failed(code, extra = '') {
  const target = embed.finish('FAILED', reasonOf(code));
  ui.showCode(code, { extra, link: target });
  embed.leaveTo(target, FAILED_REDIRECT_DELAY_MS);
}

function showFailure(ctx, error) {
  const again = () => ctx.again();
  if (!(error instanceof HttpError)) {
    ui.showProblem('unknown', { retry: again });
  } else if (error.transient) {
    if (error.codes.includes(MODEL_LOAD_FAILED)) ui.showCode(MODEL_LOAD_FAILED, { retry: again });
    else ui.showProblem('network', { retry: again });
  } else if (error.codes.length) {
    const code = primaryCode(error.codes);
    const extra = code === FACE_SCAN_ERROR ? t('outcome.noAttempts') : '';
    if (ended(error)) failed(code, extra);
    else ui.showCode(code, { extra });
  } else {
    ui.showProblem('unknown', { extra: error.message, retry: again });
  }
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
  } else if (answer.status === 'IN_PROGRESS') {
    const left = Number(answer.attemptsLeft) || 0;
    embed.post('IN_PROGRESS', reasonOf((answer.errorCodes || [FACE_SCAN_ERROR])[0]));
    ui.showCode((answer.errorCodes || [FACE_SCAN_ERROR])[0], {
      extra: left > 0 ? t('outcome.attemptsLeft', { count: left }) : t('outcome.noAttempts'),
      retry: left > 0 ? () => ctx.again() : null,
    });
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

/** Run one capture attempt of the loaded session ``ctx.session``. */
export async function run(ctx) {
  const { session } = ctx;
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
