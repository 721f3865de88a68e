// Page strings in English and French, chosen by the session's locale. Error titles
// and remedies come from the server's catalogue (catalogue.json); a translation
// file may carry "message.<code>"/"remedy.<code>" to translate them.

const ASSETS = '/capture-assets';
export const SUPPORTED = Object.freeze(['en', 'fr']);

let active = 'en';
let strings = {};
let english = {};

/** The first supported language among the candidates ("fr-CA" -> "fr"), else English. */
export function pickLanguage(...candidates) {
  for (const candidate of candidates) {
    if (typeof candidate !== 'string' || !candidate) continue;
    const base = candidate.trim().toLowerCase().split(/[-_]/)[0];
    if (SUPPORTED.includes(base)) return base;
  }
  return 'en';
}

async function fetchStrings(lang) {
  const response = await fetch(`${ASSETS}/i18n/${lang}.json`, { credentials: 'omit' });
  if (!response.ok) throw new Error(`strings for ${lang}: HTTP ${response.status}`);
  return response.json();
}

/** Load ``lang`` (English is always loaded as the fallback) and translate the page. */
export async function setLanguage(lang) {
  if (!Object.keys(english).length) english = await fetchStrings('en');
  strings = lang === 'en' ? english : await fetchStrings(lang).catch(() => english);
  active = strings === english ? 'en' : lang;
  document.documentElement.lang = active;
  apply(document);
  return active;
}

export function language() {
  return active;
}

/** The string for ``key`` with ``{name}`` placeholders filled, or undefined. */
export function lookup(key, vars = {}) {
  const text = strings[key] ?? english[key];
  if (text === undefined) return undefined;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
}

export function t(key, vars = {}) {
  return lookup(key, vars) ?? key;
}

/** Translate every element marked ``data-i18n`` under ``root``. */
export function apply(root) {
  for (const element of root.querySelectorAll('[data-i18n]')) {
    const text = lookup(element.dataset.i18n);
    if (text !== undefined) element.textContent = text;
  }
  const title = lookup('pageTitle');
  if (title) document.title = title;
}
