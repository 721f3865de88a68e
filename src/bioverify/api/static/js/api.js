// HTTP calls of the capture page: JSON in, error envelopes out, retries with backoff.

export const SESSION_PATH = '/v2/verification-session';

/** A failed call: ``status`` 0 is a network failure; ``codes`` are the envelope's. */
export class HttpError extends Error {
  constructor(status, body, retryAfter) {
    super((body && typeof body.message === 'string') ? body.message : `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.body = body;
    this.codes = (body && Array.isArray(body.errorCodes)) ? body.errorCodes : [];
    this.retryAfter = retryAfter;
  }

  /** Whether the same call may succeed later (network, overload, server fault). */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Call ``fn`` until it succeeds or fails for good; returns ``{value, failures}``.
 * Waits ``baseMs * 2**n`` (jittered, at most ``maxMs``, or the server's Retry-After).
 */
export async function withRetry(fn, { attempts = 5, baseMs = 400, maxMs = 4000, wait = sleep } = {}) {
  for (let failures = 0; ; failures += 1) {
    try {
      return { value: await fn(), failures };
    } catch (error) {
      const transient = !(error instanceof HttpError) || error.transient;
      if (!transient || failures + 1 >= attempts) throw error;
      const hinted = Number(error.retryAfter) * 1000;
      const backoff = Math.min(maxMs, baseMs * 2 ** failures) * (0.75 + Math.random() / 2);
      await wait(Number.isFinite(hinted) && hinted > 0 ? Math.min(hinted, maxMs) : backoff);
    }
  }
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? { Accept: 'application/json' }
        : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch (error) {
    throw new HttpError(0, null, null);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) throw new HttpError(response.status, data, response.headers.get('Retry-After'));
  return data;
}

/** The capture routes of one session, addressed by its capture token. */
export class CaptureApi {
  #token;

  constructor(token) {
    this.#token = token;
  }

  #path(suffix = '') {
    return `${SESSION_PATH}/${encodeURIComponent(this.#token)}${suffix}`;
  }

  loadSession() { return call('GET', this.#path()); }
  publicKey() { return call('GET', '/public-key'); }
  catalogue() { return call('GET', '/capture-assets/catalogue.json'); }
  events(envelope) { return call('POST', this.#path('/events'), envelope); }
  capture(envelope) { return call('POST', this.#path('/capture'), envelope); }
  document(envelope) { return call('POST', this.#path('/document'), envelope); }
}
