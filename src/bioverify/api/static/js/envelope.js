// The encrypted envelope of API.md section 4, with WebCrypto alone. Mirrors
// bioverify.capture.envelope.seal: a fresh AES-256-GCM key and 12-byte iv encrypt
// the UTF-8 JSON plaintext; WebCrypto appends the 16-byte tag to the ciphertext,
// which is split off into gcmTag; RSA-OAEP-SHA256 wraps the key to /public-key.

const IV_BYTES = 12;
const TAG_BYTES = 16;
const NONCE_BYTES = 32;
const encoder = new TextEncoder();

/** Standard base64 with padding (RFC 4648 section 4). */
export function base64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** base64url without padding (RFC 4648 section 5). */
export function base64url(bytes) {
  return base64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function aad(sessionId, route) {
  return encoder.encode(`bioverify:v1:${sessionId}:${route}`);
}

/** A plaintext nonce: 256 random bits, base64url. */
export function freshNonce() {
  return base64url(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

export function unixSeconds() {
  return Math.floor(Date.now() / 1000);
}

/** Import the PEM SubjectPublicKeyInfo of /public-key as an RSA-OAEP-SHA256 wrapping key. */
export async function importCaptureKey(pem) {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return crypto.subtle.importKey('spki', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['wrapKey']);
}

/** Seal a JSON object for ``route`` ("events", "capture" or "document") of one session. */
export async function seal(plaintext, { key, kid, sessionId, route }) {
  const message = encoder.encode(JSON.stringify(plaintext));
  const additionalData = aad(sessionId, route);
  const aesKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData, tagLength: TAG_BYTES * 8 }, aesKey, message));
  const wrapped = new Uint8Array(await crypto.subtle.wrapKey('raw', aesKey, key, { name: 'RSA-OAEP' }));
  return {
    encryptedKey: base64(wrapped),
    encryptedMessage: base64(sealed.subarray(0, sealed.length - TAG_BYTES)),
    iv: base64(iv),
    gcmTag: base64(sealed.subarray(sealed.length - TAG_BYTES)),
    gcmAad: base64(additionalData),
    kid,
  };
}

/** Seals plaintexts for one session; adds a fresh nonce and timestamp to each. */
export class Sealer {
  constructor(key, kid, sessionId) {
    this.key = key;
    this.kid = kid;
    this.sessionId = sessionId;
  }

  static async create(publicKeyDocument, sessionId) {
    const key = await importCaptureKey(publicKeyDocument.publicKey);
    return new Sealer(key, publicKeyDocument.kid, sessionId);
  }

  seal(route, fields) {
    const plaintext = { nonce: freshNonce(), timestamp: unixSeconds(), ...fields };
    return seal(plaintext, { key: this.key, kid: this.kid, sessionId: this.sessionId, route });
  }
}
