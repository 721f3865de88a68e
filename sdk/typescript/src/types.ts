// Wire types of the Session API, written from the service's OpenAPI document
// (GET /openapi.json) and API.md. A test in the server's suite fails when the
// OpenAPI document has a property these interfaces lack. Objects from the
// service may carry more fields than listed (newer servers add them).

/** Session types (API.md section 3). REGISTER is an alias of ENROLL. */
export type SessionType = "ENROLL" | "REGISTER" | "VERIFY" | "VERIFY_ULTRA" | "SIGN-IN";
/** What the user must present; "verification" is PrivateID's synonym of "face". */
export type Requirement = "face" | "identity_document" | "verification";
export type SessionStatus = "PENDING" | "IN_PROGRESS" | "SUCCESS" | "FAILED";

/** Where the final webhook goes. */
export interface Callback {
  url: string;
  /** Added to the webhook POST (at most 20). */
  headers?: Record<string, string> | null;
}

/** Body of POST /v2/verification-session (OpenAPI schema CreateSessionRequest). */
export interface CreateSessionRequest {
  type: SessionType;
  /** VERIFY_ULTRA: required; VERIFY: optional (without it, 1:N); ENROLL: optional; SIGN-IN: no. */
  customerId?: string | null;
  callback?: Callback | null;
  redirectURL?: string | null;
  /** Seconds, 60 to 86400 (default 900). */
  sessionExpiry?: number;
  enableDesktop?: boolean;
  bindDevice?: boolean;
  maxAttempts?: number;
  liveness?: "active" | "passive" | null;
  requirements?: Requirement[];
  sendImages?: boolean;
  deviceInfo?: Record<string, unknown> | null;
  transactionID?: string | null;
  locale?: string | null;
  sendEventWebhooks?: boolean;
  productGroupId?: string | null;
  uuid?: string | null;
}

/** 201 answer of POST /v2/verification-session (OpenAPI schema CreateSessionResponse). */
export interface CreateSessionResponse {
  sessionId: string;
  /** Opens the hosted capture page; its last path segment is the capture token. */
  launchUrl: string;
  expiresAt: string;
  status: SessionStatus;
  type: SessionType;
  customerId?: string | null;
  puid?: string | null;
  transactionID?: string | null;
}

/** One code a session recorded (OpenAPI schema SessionError). */
export interface SessionError {
  code: number;
  name: string;
  kind: string;
  message: string;
  at?: string | null;
}

/** riskEvaluation: a FAILED session is never ALLOW. */
export interface RiskEvaluation {
  score: number;
  level: "LOW" | "MEDIUM" | "HIGH" | string;
  recommendation: "ALLOW" | "REVIEW" | "DENY" | string;
  flags: string[];
}

/** The outcome figures of a finished session. */
export interface SessionResult {
  matchScore?: number | null;
  threshold?: number | null;
  livenessScore?: number | null;
  /** planarityResidual: active liveness, when the head moved (a risk signal, not the gate). */
  liveness?: { method: string; score: number; certifiedPad: boolean; planarityResidual?: number } | null;
  identification?: { puid?: string | null; confidence?: number; topKMatches?: unknown[] } | null;
  [field: string]: unknown;
}

/** What a document session read (identityInformation, document sessions only). */
export interface IdentityInformation {
  documentType?: string;
  issuingCountry?: string;
  documentNumber?: string;
  firstName?: string;
  lastName?: string;
  dateOfBirth?: string;
  expirationDate?: string;
  sex?: string;
  nationality?: string;
  /** Epoch milliseconds as a string, as PrivateID documents it. */
  verificationDate?: string;
  portraitMatchScore?: number;
  /** checkDigits is null for a PDF417 (it has none); portraitMatch null without a portrait. */
  checks?: { checkDigits?: boolean | null; expired?: boolean; portraitMatch?: boolean | null };
  [field: string]: unknown;
}

/** The audit receipt of a final webhook: RFC 9162 inclusion under a signed checkpoint. */
export interface AuditReceipt {
  index: number;
  /** A C2SP signed note. */
  checkpoint: string;
  /** Standard base64 hashes, the leaf's sibling first. */
  inclusionProof: string[];
}

/** GET /v2/verification-session/{sessionId} (OpenAPI schema SessionView). */
export interface Session {
  sessionId: string;
  type: SessionType;
  status: SessionStatus;
  customerId?: string | null;
  puid?: string | null;
  guid?: string | null;
  transactionID?: string | null;
  productGroupId?: string | null;
  uuid?: string | null;
  createdAt?: string;
  expiresAt?: string;
  completedAt?: string | null;
  attemptsLeft?: number;
  errorCodes: number[];
  errors: SessionError[];
  message?: string;
  result?: SessionResult;
  riskEvaluation?: RiskEvaluation | null;
  /** What the integrator sent merged with what the capture client observed. */
  deviceInfo?: Record<string, unknown> | null;
  /** PrivateID's documented boolean flags plus the virtualCamera summary. */
  indicators?: Record<string, unknown> | null;
  /** Document sessions, once the document was read; null otherwise. */
  identityInformation?: IdentityInformation | null;
  [field: string]: unknown;
}

/** The final (or event) webhook payload, also GET .../webhook (API.md section 5). */
export interface WebhookPayload extends Session {
  /** Event webhooks only: "session.loaded" or "attempt.failed". */
  event?: string;
  images?: { type: string; data: string }[];
  audit?: AuditReceipt;
  /** Completion time, RFC 3339 UTC (new Date() parses it). */
  timestamp?: string;
}

/** GET /v2/customers/{customerId} (OpenAPI schema CustomerView). */
export interface Customer {
  customerId: string;
  enrolled: boolean;
  puid: string;
  guid?: string | null;
  enrolledAt?: string | null;
  deviceBound: boolean;
  modelVersion: string;
}

/** Every non-2xx answer (OpenAPI schema ErrorEnvelope). */
export interface ErrorEnvelope {
  status: "error";
  message: string;
  errorCodes: number[];
  requestId: string;
  sessionId?: string;
}

/** GET /v2/audit/checkpoint. */
export interface CheckpointView {
  treeSize: number;
  rootHash: string;
  checkpoint: string;
  origin: string;
  keyName: string;
  [field: string]: unknown;
}

/** One item of GET /v2/audit/entries (this client's entries only). */
export interface AuditEntry {
  index: number;
  leafHash: string;
  entry: Record<string, unknown>;
}

/** One webhook delivery attempt (GET .../deliveries). */
export interface Delivery {
  webhookId: string;
  event?: string | null;
  attempt: number;
  at?: string | null;
  httpStatus?: number | null;
  error?: string | null;
  latencyMs: number;
  nextRetryAt?: string | null;
}

/** A JSON Web Key Set (GET /.well-known/jwks.json). */
export interface Jwks {
  keys: Array<Record<string, unknown>>;
}
