// @bioverify/client: the TypeScript SDK of the bioverify Session API.
// Zero runtime dependencies: fetch and WebCrypto (Node >= 20, browsers, edge runtimes).

export { CATALOGUE, CODES, LEGACY_ALIASES, type ErrorCode, type Kind, type RetryClass } from "./catalogue.js";
export { Client, errorFromResponse, type ClientOptions } from "./client.js";
export { canonicalJson } from "./encoding.js";
export {
  BioverifyError,
  PermanentError,
  ReceiptVerificationError,
  RETRYABLE_STATUSES,
  TransientError,
  VerificationError,
  WaitTimeout,
  WebhookVerificationError,
  decidingCode,
  errorClass,
  lookup,
} from "./errors.js";
export { leafHash, rootFromInclusion, verifyCheckpoint, verifyReceipt, type EntryLike, type SignedCheckpoint } from "./receipts.js";
export { DEFAULT_RETRY, parseRetryAfter, type RetryOptions } from "./retry.js";
export { importSigningKey, slcHeaders, slcMessage } from "./slc.js";
export type * from "./types.js";
export { TILE_WIDTH, checkpointSize, receiptFromTiles, requiredTiles, tilePath, type TileKey } from "./tiles.js";
export { verifyWebhook, type VerifyWebhookOptions, type WebhookKeys } from "./webhooks.js";
