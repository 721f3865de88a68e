// Verify a received webhook: Standard Webhooks v1 (HMAC-SHA256) and v1a (Ed25519).
//
// The signed content is `${webhook-id}.${webhook-timestamp}.${body}` over the RAW
// body (re-serialised JSON would not match); webhook-signature holds
// space-separated "version,base64" pairs, any of which may match (a secret
// rotation sends one v1 per live secret).

import { concat, fromBase64, utf8 } from "./encoding.js";
import type { Bytes } from "./encoding.js";
import { WebhookVerificationError } from "./errors.js";
import { ed25519Keys, ed25519Verify } from "./keys.js";
import type { Jwks, WebhookPayload } from "./types.js";

export const SECRET_PREFIX = "whsec_";
export const DEFAULT_TOLERANCE_SECONDS = 300;
/** More signatures than this in one header is not a rotation, it is an attack on CPU. */
export const MAX_SIGNATURES = 16;

/** A whsec_ secret, several (rotation), or the service's JWKS (v1a). */
export type WebhookKeys = string | readonly string[] | Jwks;

export interface VerifyWebhookOptions {
  toleranceSeconds?: number;
  /** Epoch seconds; the wall clock by default. */
  now?: number;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? "";
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value ?? "";
  }
  return "";
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = fromBase64(raw + "=".repeat((4 - (raw.length % 4)) % 4));
  if (bytes === undefined || bytes.length === 0) {
    throw new TypeError("the webhook secret is not base64 after its whsec_ prefix");
  }
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}

function signatures(value: string): Array<[string, Bytes]> {
  const out: Array<[string, Bytes]> = [];
  for (const item of value.split(" ").slice(0, MAX_SIGNATURES)) {
    const comma = item.indexOf(",");
    if (comma < 0) continue;
    const decoded = fromBase64(item.slice(comma + 1));
    // One malformed entry must not hide a valid one next to it.
    if (decoded !== undefined) out.push([item.slice(0, comma), decoded]);
  }
  return out;
}

/**
 * Check a received webhook and return its parsed payload.
 *
 * `body` is the raw request body (string or bytes, exactly as received). Throws
 * WebhookVerificationError on missing headers, a timestamp outside the tolerance,
 * no matching signature, or a body that is not a JSON object.
 */
export async function verifyWebhook(
  body: string | Uint8Array,
  headers: HeaderSource,
  secretOrJwks: WebhookKeys,
  options: VerifyWebhookOptions = {},
): Promise<WebhookPayload> {
  if (typeof body !== "string" && !(body instanceof Uint8Array)) {
    throw new TypeError("verifyWebhook needs the raw body (string or bytes), not parsed JSON");
  }
  const raw: Bytes = typeof body === "string" ? utf8(body) : new Uint8Array(body);
  const isJwks = typeof secretOrJwks === "object" && !Array.isArray(secretOrJwks);
  const secrets = typeof secretOrJwks === "string" ? [secretOrJwks] : isJwks ? [] : [...(secretOrJwks as string[])];
  if (!isJwks && secrets.length === 0) {
    // Fail closed: verifying against nothing must never pass.
    throw new TypeError("give at least one webhook secret or a JWKS");
  }
  const hmacKeys = await Promise.all(secrets.map(hmacKey));
  const publicKeys = isJwks ? await ed25519Keys(secretOrJwks as Jwks) : [];

  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signature = header(headers, "webhook-signature");
  if (!id || !timestamp || !signature) {
    throw new WebhookVerificationError("Missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("Malformed webhook-timestamp header");
  const now = options.now ?? Date.now() / 1000;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError("Webhook timestamp outside the tolerance window");
  }
  const content = concat(utf8(`${id}.${timestamp}.`), raw);
  let matched = false;
  for (const [version, sig] of signatures(signature)) {
    // Every candidate is checked (no early exit); HMAC verify compares in constant time.
    if (version === "v1") {
      for (const key of hmacKeys) matched = (await crypto.subtle.verify("HMAC", key, sig, content)) || matched;
    } else if (version === "v1a") {
      for (const { key } of publicKeys) matched = (await ed25519Verify(key, sig, content)) || matched;
    }
  }
  if (!matched) throw new WebhookVerificationError("No matching webhook signature");
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (cause) {
    throw new WebhookVerificationError("The webhook body is not JSON", { cause });
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
    throw new WebhookVerificationError("The webhook body is not a JSON object");
  }
  return payload as WebhookPayload;
}
