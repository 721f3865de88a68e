// Telling the integrator where the session stands, from inside the page:
// - framed (an iframe of a registered origin): postMessage of progress and result to
//   that origin only ({type: 'bioverify.session', sessionId, status, reason?});
// - at the end: the redirect to redirectURL with sessionId, status and reason added to
//   its query string (the integrator's own parameters kept).

const MESSAGE_TYPE = 'bioverify.session';

let current = null; // { sessionId, origins, redirectURL }

/** Remember the loaded session (its id, who may frame the page, where to go at the end). */
export function bind(session) {
  current = {
    sessionId: session.sessionId,
    origins: Array.isArray(session.frameAncestors) ? session.frameAncestors : [],
    redirectURL: typeof session.redirectURL === 'string' ? session.redirectURL : '',
  };
}

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether ``origin`` is matched by the CSP source ``pattern`` (host wildcard, port *). */
export function originMatches(pattern, origin) {
  const source = escapeRegex(pattern).replace(/^([a-z]+:\/\/)\\\*\\\./, '$1(?:[a-z0-9-]+\\.)+')
    .replace(/:\\\*$/, '(?::\\d+)?');
  return new RegExp(`^${source}$`, 'i').test(origin);
}

/** Where to post: the actual parent origin when it is a registered one. */
function targets() {
  if (!current || window.parent === window || !current.origins.length) return [];
  const parent = location.ancestorOrigins?.[0];
  if (parent) return current.origins.some((o) => originMatches(o, parent)) ? [parent] : [];
  // Browsers without ancestorOrigins: post to each exact registered origin; the browser
  // delivers only to the one that is really the parent.
  return current.origins.filter((o) => !o.includes('*'));
}

/** Tell a framing parent of a registered origin where the session stands. */
export function post(status, reason = '') {
  if (!current) return;
  const message = { type: MESSAGE_TYPE, sessionId: current.sessionId, status };
  if (reason) message.reason = reason;
  for (const origin of targets()) window.parent.postMessage(message, origin);
}

/** ``url`` with the outcome in its query string, or null when there is no usable URL. */
export function redirectTarget(status, reason, url = current?.redirectURL) {
  if (typeof url !== 'string' || !url || !current) return null;
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch (error) {
    return null;
  }
  if (!['https:', 'http:'].includes(parsed.protocol)) return null;
  parsed.searchParams.set('sessionId', current.sessionId);
  parsed.searchParams.set('status', status);
  parsed.searchParams.set('reason', reason);
  return parsed.href;
}

/** The session ended: tell the parent, and return where to send the user (or null). */
export function finish(status, reason, url = undefined) {
  post(status, reason);
  return redirectTarget(status, reason, url);
}

/** Send the user on to ``target`` after ``delayMs`` (they first see the outcome). */
export function leaveTo(target, delayMs) {
  if (target) setTimeout(() => location.assign(target), delayMs);
}
