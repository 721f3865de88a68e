// The integrator client: every route of API.md section 3, typed, signed, retried.

import { utf8 } from "./encoding.js";
import type { Bytes } from "./encoding.js";
import {
  BioverifyError,
  PermanentError,
  TransientError,
  WaitTimeout,
  errorClass,
} from "./errors.js";
import { DEFAULT_RETRY, RetryBudget, parseRetryAfter, realSleep, type RetryOptions } from "./retry.js";
import { importSigningKey, slcHeaders } from "./slc.js";
import { TILE_WIDTH, checkpointSize, receiptFromTiles, requiredTiles, tilePath } from "./tiles.js";
import type {
  AuditEntry,
  AuditReceipt,
  CheckpointView,
  CreateSessionRequest,
  CreateSessionResponse,
  Customer,
  Delivery,
  Jwks,
  Session,
  WebhookPayload,
} from "./types.js";

export interface ClientOptions {
  /** The service's base URL, e.g. "https://verify.example.com". */
  baseUrl: string;
  apiKey: string;
  clientId?: string;
  /** Sent as is on every request (TLS only). Give this or signingKey, not both. */
  clientSecret?: string;
  /** Ed25519 private key (PKCS#8 PEM or a WebCrypto key): every request is signed (SLC). */
  signingKey?: string | CryptoKey;
  retry?: RetryOptions;
  /** Per-attempt timeout, ms (default 30000). */
  timeoutMs?: number;
  /** Injected fetch (tests, proxies); globalThis.fetch by default. */
  fetch?: typeof fetch;
  /** Injected sleep (tests record waits instead of sleeping). */
  sleep?: (ms: number) => Promise<void>;
}

interface Call {
  method: "GET" | "POST" | "DELETE";
  path: string;
  query?: Record<string, string | number>;
  body?: unknown;
  headers?: Record<string, string>;
  authenticated?: boolean;
  /** The answer is not JSON: resolve to its text or bytes. */
  raw?: "text" | "bytes";
  /** A 404 on a retry means an earlier attempt (whose answer was lost) already did it. */
  doneIfGoneOnRetry?: boolean;
}

const SESSIONS = "/v2/verification-session";
const FINISHED = new Set(["SUCCESS", "FAILED"]);
const segment = (value: string): string => encodeURIComponent(value);

export class Client {
  private readonly baseUrl: string;
  private readonly retry: Required<RetryOptions>;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly timeoutMs: number;
  private signingKey: Promise<CryptoKey> | undefined; // imported on first use

  constructor(private readonly options: ClientOptions) {
    if (!options.apiKey) throw new TypeError("apiKey is required");
    if ((options.clientSecret || options.signingKey) && !options.clientId) {
      throw new TypeError("clientId is required with clientSecret or signingKey");
    }
    if (options.clientSecret && options.signingKey) {
      throw new TypeError("give clientSecret or signingKey, not both");
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    if (this.retry.maxAttempts < 1) throw new TypeError("retry.maxAttempts must be at least 1");
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.sleep = options.sleep ?? realSleep;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Open a session. Always idempotent: a retried create never opens a second session. */
  createSession(
    request: CreateSessionRequest,
    options: { idempotencyKey?: string } = {},
  ): Promise<CreateSessionResponse> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    return this.send({ method: "POST", path: SESSIONS, body: request, headers: { "Idempotency-Key": key } });
  }

  getSession(sessionId: string): Promise<Session> {
    return this.send({ method: "GET", path: `${SESSIONS}/${segment(sessionId)}` });
  }

  /** The final webhook payload (polling fallback); a PermanentError 409 while open. */
  getWebhookPayload(sessionId: string): Promise<WebhookPayload> {
    return this.send({ method: "GET", path: `${SESSIONS}/${segment(sessionId)}/webhook` });
  }

  async listDeliveries(sessionId: string): Promise<Delivery[]> {
    const page = await this.send<{ deliveries?: Delivery[] }>({
      method: "GET",
      path: `${SESSIONS}/${segment(sessionId)}/deliveries`,
    });
    return page.deliveries ?? [];
  }

  /** Queue the final webhook again (same webhook-id); its webhook-id. */
  async redeliver(sessionId: string): Promise<string> {
    const answer = await this.send<{ webhookId: string }>({
      method: "POST",
      path: `${SESSIONS}/${segment(sessionId)}/webhook/redeliver`,
    });
    return answer.webhookId;
  }

  getCustomer(customerId: string): Promise<Customer> {
    return this.send({ method: "GET", path: `/v2/customers/${segment(customerId)}` });
  }

  /** Erase the customer's template and device binding (crypto-erase). */
  async eraseCustomer(customerId: string): Promise<void> {
    await this.send({ method: "DELETE", path: `/v2/customers/${segment(customerId)}`, doneIfGoneOnRetry: true });
  }

  auditCheckpoint(): Promise<CheckpointView> {
    return this.send({ method: "GET", path: "/v2/audit/checkpoint" });
  }

  async auditEntries(start: number, end?: number): Promise<AuditEntry[]> {
    const query: Record<string, number> = end === undefined ? { start } : { start, end };
    const page = await this.send<{ entries?: AuditEntry[] }>({ method: "GET", path: "/v2/audit/entries", query });
    return page.entries ?? [];
  }

  /** This client's audit entry at `index` (a PermanentError 404 if it is not this client's). */
  async auditEntry(index: number): Promise<AuditEntry> {
    const found = (await this.auditEntries(index, index + 1)).find((e) => e.index === index);
    if (found === undefined) throw new PermanentError(`No audit entry ${index} for this client`, { status: 404 });
    return found;
  }

  inclusionProof(index: number, treeSize: number): Promise<Record<string, unknown>> {
    return this.send({ method: "GET", path: "/v2/audit/proof/inclusion", query: { index, treeSize } });
  }

  consistencyProof(first: number, second: number): Promise<Record<string, unknown>> {
    return this.send({ method: "GET", path: "/v2/audit/proof/consistency", query: { first, second } });
  }

  /** The service's signing keys. Pin them for verifyReceipt; see the README. */
  jwks(): Promise<Jwks> {
    return this.send({ method: "GET", path: "/.well-known/jwks.json", authenticated: false });
  }

  /** The latest signed checkpoint note, from the public tlog-tiles route. */
  tlogCheckpoint(): Promise<string> {
    return this.send({ method: "GET", path: "/v2/audit/tlog/checkpoint", authenticated: false, raw: "text" });
  }

  /** One hash tile (`width` hashes of 32 bytes) of the public log. */
  tlogTile(level: number, index: number, width = TILE_WIDTH): Promise<Uint8Array> {
    return this.send({ method: "GET", path: `/v2/audit/tlog/${tilePath(level, index, width)}`, authenticated: false, raw: "bytes" });
  }

  /** A receipt for entry `index` from the public tiles alone; check it with verifyReceipt. */
  async tlogReceipt(index: number, checkpoint?: string): Promise<AuditReceipt> {
    const note = checkpoint ?? (await this.tlogCheckpoint());
    const keys = await requiredTiles(index, checkpointSize(note));
    const tiles = new Map<string, Uint8Array>();
    await Promise.all(keys.map(async (key) => tiles.set(key.join("/"), await this.tlogTile(...key))));
    return receiptFromTiles(index, note, tiles);
  }

  /** Poll until the session is SUCCESS or FAILED; WaitTimeout after `timeoutMs`. */
  async waitForResult(
    sessionId: string,
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<Session> {
    const timeoutMs = options.timeoutMs ?? 300_000;
    let next = options.pollMs ?? 2_000;
    let waited = 0;
    for (;;) {
      const session = await this.getSession(sessionId);
      if (FINISHED.has(session.status)) return session;
      if (waited >= timeoutMs) {
        throw new WaitTimeout(`Session ${sessionId} did not finish within ${timeoutMs} ms`, { sessionId });
      }
      const delay = Math.min(next, timeoutMs - waited);
      await this.sleep(delay);
      waited += delay;
      next = Math.min(next * 1.5, 15_000);
    }
  }

  private async send<T>(call: Call): Promise<T> {
    const budget = new RetryBudget(this.retry);
    // Built once: every attempt sends the same bytes (and the same Idempotency-Key).
    const body = call.body === undefined ? undefined : utf8(JSON.stringify(call.body));
    const url = new URL(this.baseUrl + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) url.searchParams.set(k, String(v));
    for (;;) {
      const attempt = budget.startAttempt();
      // Outside the try: a bad signing key is the caller's mistake, never retried.
      const headers = await this.headers(call, url, body);
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          method: call.method,
          headers,
          body,
          redirect: "manual", // a redirect is an answer (a PermanentError), not followed
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (caught) {
        const error = transportError(caught);
        const delay = budget.delayBeforeRetry(error);
        if (delay === undefined) throw error;
        await this.sleep(delay);
        continue;
      }
      if (response.ok) return parseAnswer<T>(call, response);
      if (call.doneIfGoneOnRetry && attempt > 1 && response.status === 404) return undefined as T;
      const error = await errorFromResponse(response);
      const delay = budget.delayBeforeRetry(error);
      if (delay === undefined) throw error;
      await this.sleep(delay);
    }
  }

  private async headers(call: Call, url: URL, body: Bytes | undefined): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: "application/json", ...call.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (call.authenticated !== false) Object.assign(headers, await this.credentials(call.method, url, body));
    return headers;
  }

  private async credentials(method: string, url: URL, body: Bytes | undefined): Promise<Record<string, string>> {
    const out: Record<string, string> = { x_api_key: this.options.apiKey };
    if (this.options.clientId) out.clientID = this.options.clientId;
    if (this.options.clientSecret) out.clientSecret = this.options.clientSecret;
    const key = this.options.signingKey;
    if (key !== undefined) {
      // Imported when first needed, so a bad key rejects a call, never an idle process.
      this.signingKey ??= typeof key === "string" ? importSigningKey(key) : Promise.resolve(key);
      // Signed afresh per attempt: the server refuses a repeated X-Request-ID.
      Object.assign(out, await slcHeaders(await this.signingKey, method, url.pathname + url.search, body ?? new Uint8Array()));
    }
    return out;
  }
}

async function parseAnswer<T>(call: Call, response: Response): Promise<T> {
  try {
    if (call.raw === "bytes") return new Uint8Array(await response.arrayBuffer()) as T;
    const text = await response.text();
    if (call.raw === "text") return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  } catch (cause) {
    // The answer arrived but cannot be read: repeating the request will not fix it.
    throw new PermanentError("The service answered with a body that is not JSON", {
      status: response.status,
      requestId: response.headers.get("x-request-id") ?? undefined,
      cause,
    });
  }
}

/** The classified error of a non-2xx answer (the API.md error body, or any body). */
export async function errorFromResponse(response: Response): Promise<BioverifyError> {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await response.text());
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's HTML page): the status decides.
  }
  const codes = Array.isArray(body.errorCodes) ? body.errorCodes.filter((c): c is number => Number.isInteger(c)) : [];
  const message = typeof body.message === "string" && body.message ? body.message : `HTTP ${response.status}`;
  const requestId = typeof body.requestId === "string" ? body.requestId : response.headers.get("x-request-id") ?? undefined;
  const Kind = errorClass(response.status, codes);
  return new Kind(message, {
    status: response.status,
    errorCodes: codes,
    requestId,
    retryAfter: parseRetryAfter(response.headers.get("retry-after")),
    sessionId: typeof body.sessionId === "string" ? body.sessionId : undefined,
  });
}

function transportError(cause: unknown): TransientError | PermanentError {
  const name = cause instanceof Error ? cause.name : typeof cause;
  if (name === "TimeoutError" || name === "AbortError") {
    return new TransientError(`Timed out talking to the service (${name})`, { cause });
  }
  if (cause instanceof TypeError) {
    // fetch rejects with a TypeError when no answer arrived (refused, reset, DNS).
    return new TransientError(`Could not talk to the service (${cause.message})`, { cause });
  }
  return new PermanentError(`The HTTP exchange failed (${name})`, { cause });
}
