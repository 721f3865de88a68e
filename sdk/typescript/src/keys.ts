// Ed25519 public keys from the service's JWKS, as WebCrypto keys.

import { fromBase64Url } from "./encoding.js";
import type { Bytes } from "./encoding.js";
import type { Jwks } from "./types.js";

export interface PublicKeyEntry {
  /** The raw 32-byte key (signed-note key ids hash it). */
  raw: Bytes;
  key: CryptoKey;
}

/** The Ed25519 keys of a JWKS (other key types are skipped); throws when there is none. */
export async function ed25519Keys(jwks: Jwks | Record<string, unknown>): Promise<PublicKeyEntry[]> {
  const list = "keys" in jwks ? (jwks as Jwks).keys : [jwks];
  if (!Array.isArray(list)) throw new TypeError("JWKS 'keys' must be a list");
  const out: PublicKeyEntry[] = [];
  for (const jwk of list) {
    if (jwk === null || typeof jwk !== "object" || jwk.kty !== "OKP" || jwk.crv !== "Ed25519") {
      continue;
    }
    const raw = typeof jwk.x === "string" ? fromBase64Url(jwk.x) : undefined;
    if (raw === undefined || raw.length !== 32) throw new TypeError("JWK Ed25519 'x' must be 32 bytes");
    const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    out.push({ raw, key });
  }
  if (out.length === 0) throw new TypeError("no Ed25519 key in the key set");
  return out;
}

export async function ed25519Verify(
  key: CryptoKey,
  signature: Bytes,
  data: Bytes,
): Promise<boolean> {
  if (signature.length !== 64) return false;
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
}
