// How a capture call ended, shown and told: the outcome screen, the parent window
// (postMessage) and the redirect. Shared by the face and the document steps.

import { HttpError } from './api.js';
import * as embed from './embed.js';
import { t } from './i18n.js';
import * as ui from './ui.js';

const MODEL_LOAD_FAILED = -20;
const FACE_SCAN_ERROR = -22;
const DOCUMENT_SCAN_ERROR = -23;
const REDIRECT_DELAY_MS = 2500;
const FAILED_REDIRECT_DELAY_MS = 5000; // time to read the remedy first

/** The code a failed answer is about: its last fatal code, else its last code. */
export function primaryCode(codes) {
  const fatal = codes.filter((code) => ui.codeInfo(code)?.kind === 'fatal');
  return (fatal.length ? fatal : codes)[Math.max(0, (fatal.length ? fatal : codes).length - 1)];
}

/** The catalogue name of ``code`` (the redirect's and postMessage's ``reason``). */
export function reasonOf(code) {
  return ui.codeInfo(code)?.name || String(code);
}

/** Whether a failed answer ended the session (a fatal code, or an outcome 422). */
function ended(error) {
  return error.status === 422 || error.codes.some((code) => ui.codeInfo(code)?.kind === 'fatal');
}

export function succeed(redirectURL) {
  const target = embed.finish('SUCCESS', 'success', redirectURL || undefined);
  ui.showSuccess(target);
  embed.leaveTo(target, REDIRECT_DELAY_MS);
}

/** The session failed with ``code``: the outcome screen, the parent told, the redirect. */
export function failed(code, extra = '') {
  const target = embed.finish('FAILED', reasonOf(code));
  ui.showCode(code, { extra, link: target });
  embed.leaveTo(target, FAILED_REDIRECT_DELAY_MS);
}

export function showFailure(ctx, error) {
  const again = () => ctx.again();
  if (!(error instanceof HttpError)) {
    ui.showProblem('unknown', { retry: again });
  } else if (error.transient) {
    if (error.codes.includes(MODEL_LOAD_FAILED)) ui.showCode(MODEL_LOAD_FAILED, { retry: again });
    else ui.showProblem('network', { retry: again });
  } else if (error.codes.length) {
    const code = primaryCode(error.codes);
    const extra = [FACE_SCAN_ERROR, DOCUMENT_SCAN_ERROR].includes(code) ? t('outcome.noAttempts') : '';
    if (ended(error)) failed(code, extra);
    else ui.showCode(code, { extra });
  } else {
    ui.showProblem('unknown', { extra: error.message, retry: again });
  }
}

/** A diagnostic attempt (-22, -23) left the session open: its remedy, and a retry. */
export function retryable(ctx, answer, fallbackCode, retry) {
  const code = (answer.errorCodes || [fallbackCode])[0];
  const left = Number(answer.attemptsLeft) || 0;
  embed.post('IN_PROGRESS', reasonOf(code));
  ui.showCode(code, {
    extra: left > 0 ? t('outcome.attemptsLeft', { count: left }) : t('outcome.noAttempts'),
    retry: left > 0 ? retry : null,
  });
}
