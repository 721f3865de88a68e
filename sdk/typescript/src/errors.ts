// The SDK's errors, classified permanent or transient from the service's catalogue.
//
//   BioverifyError                base of everything the SDK throws on purpose
//   ├── PermanentError            do not retry: credentials, bad request, unknown object,
//   │                             or a permanent session code (SPOOF, -9, ...)
//   ├── TransientError            retrying can help: 429/5xx/network (the SDK already
//   │   │                         repeated the request), or a transient session code
//   │   └── WaitTimeout           waitForResult ran out of time
//   └── VerificationError         a webhook or receipt does not check out (fail closed)
//       ├── WebhookVerificationError
//       └── ReceiptVerificationError

import { CATALOGUE, LEGACY_ALIASES, type ErrorCode, type RetryClass } from "./catalogue.js";

/** HTTP statuses where repeating the very same request may succeed. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

const BY_CODE: ReadonlyMap<number, ErrorCode> = new Map(CATALOGUE.map((row) => [row.code, row]));

/** The catalogue row of a code (legacy aliases resolved), or undefined. */
export function lookup(code: number): ErrorCode | undefined {
  return BY_CODE.get(LEGACY_ALIASES[String(code)] ?? code);
}

/** The row that decides: the first fatal code, else the last known code. */
export function decidingCode(codes: readonly number[]): ErrorCode | undefined {
  const rows = codes.map(lookup).filter((r): r is ErrorCode => r !== undefined);
  return rows.find((r) => r.kind === "fatal") ?? rows[rows.length - 1];
}

export interface ErrorDetails {
  status?: number | undefined;
  errorCodes?: readonly number[];
  requestId?: string | undefined;
  /** Seconds, from the answer's Retry-After. */
  retryAfter?: number | undefined;
  sessionId?: string | undefined;
  cause?: unknown;
}

export class BioverifyError extends Error {
  /** Undefined when no HTTP answer arrived (network error, timeout). */
  readonly status: number | undefined;
  readonly errorCodes: readonly number[];
  readonly requestId: string | undefined;
  readonly retryAfter: number | undefined;
  readonly sessionId: string | undefined;
  /** The catalogue row that decided the class, if a code decided. */
  readonly code: ErrorCode | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.status = details.status;
    this.errorCodes = Object.freeze([...(details.errorCodes ?? [])]);
    this.requestId = details.requestId;
    this.retryAfter = details.retryAfter;
    this.sessionId = details.sessionId;
    this.code = decidingCode(this.errorCodes);
  }

  /** The catalogue's user-facing remedy for the deciding code. */
  get remedy(): string | undefined {
    return this.code?.remedy;
  }

  get retryClass(): RetryClass {
    return this instanceof TransientError ? "transient" : "permanent";
  }
}

/** Repeating the request (or the session) cannot change the answer. */
export class PermanentError extends BioverifyError {}

/** Trying again may succeed. */
export class TransientError extends BioverifyError {
  /** True when the same request may succeed later; false when a new session is needed. */
  get requestRetryable(): boolean {
    return this.code === undefined;
  }
}

/** waitForResult ran out of time. */
export class WaitTimeout extends TransientError {}

/** Something signed by the service did not verify. Never retry with looser checks. */
export class VerificationError extends BioverifyError {}
export class WebhookVerificationError extends VerificationError {}
export class ReceiptVerificationError extends VerificationError {}

/** PermanentError or TransientError: a catalogue code decides, else the HTTP status. */
export function errorClass(
  status: number | undefined,
  codes: readonly number[],
): typeof PermanentError | typeof TransientError {
  const row = decidingCode(codes);
  if (row !== undefined) return row.retry === "permanent" ? PermanentError : TransientError;
  if (status === undefined || RETRYABLE_STATUSES.has(status)) return TransientError;
  return PermanentError;
}
