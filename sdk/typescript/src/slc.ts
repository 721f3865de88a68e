// SLC: a per-request Ed25519 signature instead of a client secret (API.md section 3).
//
// The signature (base64url, no padding) covers
// `METHOD\nPATH?QUERY\nX-Timestamp\nX-Request-ID\nhex(SHA-256(body))`; the server
// holds only the public key, so it could never have produced one itself.

import { fromBase64, sha256, toBase64Url, toHex, utf8 } from "./encoding.js";
import type { Bytes } from "./encoding.js";

/** Import an Ed25519 private key from PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). */
export async function importSigningKey(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  const der = fromBase64(b64);
  if (der === undefined) throw new TypeError("the signing key is not a PKCS#8 PEM");
  return crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
}

/** The bytes an SLC signature covers. */
export async function slcMessage(
  method: string,
  pathWithQuery: string,
  timestamp: string,
  requestId: string,
  body: Bytes,
): Promise<Bytes> {
  const digest = toHex(await sha256(body));
  return utf8(`${method.toUpperCase()}\n${pathWithQuery}\n${timestamp}\n${requestId}\n${digest}`);
}

/** The SLC headers of one request (a fresh timestamp and request id every time). */
export async function slcHeaders(
  key: CryptoKey,
  method: string,
  pathWithQuery: string,
  body: Bytes,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<Record<string, string>> {
  const timestamp = String(nowSeconds);
  const requestId = crypto.randomUUID().replace(/-/g, "");
  const message = await slcMessage(method, pathWithQuery, timestamp, requestId, body);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
  return { SLC: toBase64Url(signature), "X-Timestamp": timestamp, "X-Request-ID": requestId };
}
