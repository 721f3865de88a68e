// Entry point of the hosted capture page. Takes the capture token out of the address
// bar at once (kept in memory only), loads the session with retries, reports client
// codes (each diagnostic once), and hands over to flow.js for the capture.

import { CaptureApi, HttpError, withRetry } from './api.js';
import * as embed from './embed.js';
import { Sealer } from './envelope.js';
import * as i18n from './i18n.js';
import { deviceInfo, isDesktop } from './integrity.js';
import * as ui from './ui.js';

const DESKTOP = -5;
const MODEL_LOAD_FAILED = -20;
const SESSION_LOAD_FAILED = -24;
const LOAD_ATTEMPTS = 6;

function takeToken() {
  const match = /^\/capture\/([^/?#]+)\/?$/.exec(location.pathname);
  // Remove the secret from the address bar and history before anything else runs.
  history.replaceState(null, '', '/capture/');
  return match ? decodeURIComponent(match[1]) : null;
}

const token = takeToken();
document.documentElement.classList.add('booted');

/** Sends client codes through /events, encrypted; each code at most once per page. */
class Reporter {
  constructor(api) {
    this.api = api;
    this.sealer = null;
    this.sent = new Set();
    this.indicators = null;
  }

  async report(code, detail = '') {
    if (this.sent.has(code) || !this.sealer) return null;
    this.sent.add(code);
    const fields = { events: [{ code, ...(detail ? { detail: String(detail).slice(0, 200) } : {}) }],
      deviceInfo: deviceInfo() };
    if (this.indicators) fields.indicators = this.indicators;
    // Each try is sealed anew: a fresh nonce, since a resent nonce is a replay (-15).
    const { value } = await withRetry(async () => this.api.events(await this.sealer.seal('events', fields)),
      { attempts: 3 });
    return value;
  }
}

let loadFailures = 0;
let flowAttempt = 0;

function showLoadError(error, retry) {
  if (error instanceof HttpError && error.codes.length) {
    const fatal = error.codes.filter((code) => ui.codeInfo(code)?.kind === 'fatal');
    ui.showCode((fatal.length ? fatal : error.codes).slice(-1)[0]);
  } else if (error instanceof HttpError && (error.status === 401 || error.status === 404)) {
    ui.showProblem('link');
  } else if (error instanceof HttpError && error.transient) {
    ui.showProblem('network', { retry });
  } else {
    ui.showProblem('unknown', { retry });
  }
}

async function importFlow() {
  flowAttempt += 1;
  return import(flowAttempt === 1 ? './flow.js' : `./flow.js?attempt=${flowAttempt}`);
}

async function loadAndRun(api, reporter, { autoStart = false } = {}) {
  ui.show('loading');
  const again = () => loadAndRun(api, reporter, { autoStart: true });
  let loaded;
  try {
    loaded = await withRetry(() => api.loadSession(), { attempts: LOAD_ATTEMPTS });
  } catch (error) {
    if (error instanceof HttpError && error.transient) loadFailures += LOAD_ATTEMPTS;
    showLoadError(error, again);
    return;
  }
  loadFailures += loaded.failures;
  const session = loaded.value;
  embed.bind(session);
  embed.post('IN_PROGRESS', 'loaded');
  await i18n.setLanguage(i18n.pickLanguage(session.locale, navigator.language)).catch(() => null);
  try {
    reporter.sealer = await Sealer.create((await withRetry(() => api.publicKey())).value, session.sessionId);
  } catch (error) {
    showLoadError(error, again);
    return;
  }
  if (loadFailures > 0) {
    await reporter.report(SESSION_LOAD_FAILED, `session loaded after ${loadFailures} failed attempt(s)`)
      .catch(() => null);
  }
  if (!session.enableDesktop && isDesktop()) {
    await reporter.report(DESKTOP, 'desktop browser').catch(() => null);
    const target = embed.finish('FAILED', ui.codeInfo(DESKTOP)?.name || 'DESKTOP');
    ui.showCode(DESKTOP, { link: target });
    embed.leaveTo(target, 5000);
    return;
  }
  let flow;
  try {
    flow = await importFlow();
  } catch (error) {
    await reporter.report(MODEL_LOAD_FAILED, 'capture script failed to load').catch(() => null);
    ui.showCode(MODEL_LOAD_FAILED, { retry: again });
    return;
  }
  const ctx = { session, api, sealer: reporter.sealer, reporter, again };
  if (autoStart) await flow.run(ctx);
  else ui.showIntro(Boolean(session.challenge), () => flow.run(ctx));
}

async function main() {
  await i18n.setLanguage(i18n.pickLanguage(navigator.language)).catch(() => null);
  if (!token) {
    ui.showProblem('noToken');
    return;
  }
  const api = new CaptureApi(token);
  const catalogue = await withRetry(() => api.catalogue()).catch(() => null);
  ui.setCatalogue(catalogue ? catalogue.value : null);
  await loadAndRun(api, new Reporter(api));
}

main().catch(() => ui.showProblem('unknown'));
