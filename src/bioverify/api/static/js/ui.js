// Views of the page and the outcome screen. Error titles and remedies come from the
// server's catalogue (catalogue.json), translated when the language file has them.

import { lookup, t } from './i18n.js';

const VIEWS = ['loading', 'intro', 'camera', 'sending', 'outcome'];
let catalogue = null;

const $ = (id) => document.getElementById(id);

export function setCatalogue(document_) {
  catalogue = document_;
}

/** The catalogue row of ``code`` (legacy aliases resolved), or null. */
export function codeInfo(code) {
  if (!catalogue) return null;
  const canonical = catalogue.aliases?.[String(code)] ?? code;
  return catalogue.codes?.[String(canonical)] ? { code: canonical, ...catalogue.codes[String(canonical)] } : null;
}

/** Show one view, hide the others, and move focus to its heading. */
export function show(name) {
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  document.body.dataset.view = name;
  const heading = $(`view-${name}`).querySelector('h1');
  if (heading && heading.tabIndex === -1) heading.focus({ preventScroll: true });
}

export function video() {
  return $('preview');
}

export function showIntro(active, onStart) {
  $('intro-active').hidden = !active;
  const start = $('start');
  start.disabled = false;
  start.onclick = () => {
    start.disabled = true;
    onStart();
  };
  show('intro');
}

let lastGuidance = '';

/** Live guidance text (announced politely, only when it changes) and the oval's state. */
export function guide(key, state = '', vars = {}) {
  const text = t(key, vars);
  const line = $('guidance');
  if (text !== lastGuidance) {
    line.textContent = text;
    lastGuidance = text;
  }
  line.dataset.key = key;
  $('oval').className = `oval ${state}`.trim();
}

/** The active-liveness movements as a list; ``current`` is highlighted. */
export function steps(list, current) {
  const container = $('steps');
  container.hidden = !list.length;
  container.setAttribute('aria-label', t('steps.label'));
  container.replaceChildren(...list.map((step, index) => {
    const item = document.createElement('li');
    item.textContent = t(`stepShort.${step}`);
    if (index < current) item.className = 'done';
    if (index === current) item.setAttribute('aria-current', 'step');
    return item;
  }));
}

function outcome({ status, title, remedy, extra = '', code = null, retry = null, link = null }) {
  const view = $('view-outcome');
  view.dataset.status = status;
  view.dataset.code = code === null ? '' : String(code);
  $('outcome-icon').className = `icon ${status === 'SUCCESS' ? 'ok' : 'bad'}`;
  $('outcome-title').textContent = title;
  $('outcome-remedy').textContent = remedy;
  $('outcome-extra').textContent = extra;
  $('outcome-extra').hidden = !extra;
  const info = code === null ? null : codeInfo(code);
  $('outcome-code').textContent = info ? t('outcome.code', { code, name: info.name }) : '';
  const retryButton = $('retry');
  retryButton.hidden = !retry;
  retryButton.onclick = retry ? () => { retryButton.hidden = true; retry(); } : null;
  const continueLink = $('continue');
  continueLink.hidden = !link;
  if (link) continueLink.href = link;
  else continueLink.removeAttribute('href');
  show('outcome');
}

/** The outcome screen for a catalogue ``code``: its title and remedy. */
export function showCode(code, { retry = null, extra = '', fallback = '', link = null } = {}) {
  const info = codeInfo(code);
  outcome({
    link,
    status: 'FAILED',
    code,
    title: lookup(`message.${code}`) ?? info?.message ?? t('error.unknown.title'),
    remedy: lookup(`remedy.${code}`) ?? info?.remedy ?? (fallback || t('error.unknown.text')),
    extra,
    retry,
  });
}

/** An outcome without a catalogue code (network trouble, an unusable link). */
export function showProblem(kind, { retry = null, extra = '' } = {}) {
  outcome({ status: 'FAILED', title: t(`error.${kind}.title`), remedy: t(`error.${kind}.text`), extra, retry });
}

export function showSuccess(redirectURL) {
  outcome({
    status: 'SUCCESS',
    title: t('success.title'),
    remedy: t('success.text'),
    extra: redirectURL ? t('success.redirect') : t('success.close'),
    link: redirectURL,
  });
}
