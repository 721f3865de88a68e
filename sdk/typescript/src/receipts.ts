// Verify the audit receipt a final webhook carries, offline.
//
// A receipt ({"index", "checkpoint": signed note, "inclusionProof": [base64]})
// proves that the service's signed, append-only log holds the entry that ended
// the session: the checkpoint (c2sp.org/tlog-checkpoint, a c2sp.org/signed-note)
// must be signed by a JWKS key under the expected key name and origin, and the
// RFC 9162 proof must lead from the entry's leaf at `index` to the signed root.

import { canonicalJson, concat, equalBytes, fromBase64, sha256, utf8 } from "./encoding.js";
import type { Bytes } from "./encoding.js";
import { ReceiptVerificationError } from "./errors.js";
import { ed25519Keys, ed25519Verify, type PublicKeyEntry } from "./keys.js";
import type { AuditEntry, AuditReceipt, Jwks } from "./types.js";

const HASH_SIZE = 32;
/** Deeper than any tree of 2**64 leaves: a longer proof is an attack on CPU. */
const MAX_PROOF = 64;
const MAX_NOTE = 64 * 1024;
const SIG_PREFIX = "\u2014 ";

/** A checkpoint whose signature verified. */
export interface SignedCheckpoint {
  origin: string;
  size: number;
  root: Bytes;
}

const fail = (why: string): never => {
  throw new ReceiptVerificationError(`Audit receipt does not verify: ${why}`);
};

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export const leafHash = (data: Bytes): Promise<Bytes> => sha256(concat(new Uint8Array([0]), data));
const nodeHash = (l: Bytes, r: Bytes): Promise<Bytes> => sha256(concat(new Uint8Array([1]), l, r));

/** The root an inclusion proof implies (RFC 9162 section 2.1.3.2); throws when malformed. */
export async function rootFromInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proofHashes: readonly Uint8Array[],
): Promise<Bytes> {
  const leaf: Bytes = new Uint8Array(leafHash);
  const proof: Bytes[] = proofHashes.map((p) => new Uint8Array(p));
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    fail("index must be smaller than the tree size");
  }
  if (leaf.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) fail("hashes must be 32 bytes");
  // BigInt: tree sizes may pass 2**31, where JavaScript's bit operators stop working.
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) fail("inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("inclusion proof is too short");
  return r;
}

/** The 4-byte signed-note key id: SHA-256(name || "\n" || 0x01 || key)[:4]. */
export async function noteKeyId(keyName: string, raw: Bytes): Promise<Bytes> {
  return (await sha256(concat(utf8(`${keyName}\n`), new Uint8Array([1]), raw))).slice(0, 4);
}

/** Verify a checkpoint note signed by one of `keys` as `keyName` for log `origin`. */
export async function verifyCheckpoint(
  note: string,
  keys: readonly PublicKeyEntry[],
  keyName: string,
  origin: string,
): Promise<SignedCheckpoint> {
  if (!keyName || keyName.includes("+") || /\s/.test(keyName)) fail("key name is malformed");
  if (typeof note !== "string" || note.length > MAX_NOTE || !note.endsWith("\n")) fail("checkpoint note is malformed");
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0) fail("checkpoint note has no signature block");
  const body = note.slice(0, cut + 1);
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) fail("checkpoint needs origin, size and root lines");
  if (lines[0] !== origin) fail("checkpoint is for another log origin");
  const sizeText = lines[1] ?? "";
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) fail("checkpoint size line is malformed");
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) fail("checkpoint size is too large for this SDK");
  const root = fromBase64(lines[2] ?? "");
  if (root === undefined || root.length !== HASH_SIZE) fail("checkpoint root is not a base64 hash");

  const byId = new Map<string, PublicKeyEntry>();
  for (const entry of keys) byId.set((await noteKeyId(keyName, entry.raw)).join(","), entry);
  let verified = false;
  for (const line of note.slice(cut + 2, -1).split("\n")) {
    if (!line.startsWith(SIG_PREFIX)) fail("checkpoint signature line is malformed");
    const [name, encoded, extra] = line.slice(SIG_PREFIX.length).split(" ");
    if (!name || encoded === undefined || extra !== undefined) fail("checkpoint signature line is malformed");
    const blob = fromBase64(encoded ?? "");
    if (blob === undefined) fail("checkpoint signature is not base64");
    if (name !== keyName || blob!.length <= 4) continue;
    const key = byId.get(blob!.slice(0, 4).join(","));
    if (key === undefined) continue; // other signers (witnesses) are ignored
    // A line of the expected key that does not verify rejects the note (c2sp signed-note).
    if (!(await ed25519Verify(key.key, blob!.slice(4), utf8(body)))) fail("checkpoint signature does not verify");
    verified = true;
  }
  if (!verified) fail("checkpoint is not signed by a known key");
  return { origin, size, root: root! };
}

/** The leaf hash, an AuditEntry from /v2/audit/entries, or the entry body itself. */
export type EntryLike = Uint8Array | AuditEntry | Record<string, unknown>;

async function entryLeaf(entry: EntryLike): Promise<{ leaf: Bytes; body?: Record<string, unknown> }> {
  if (entry instanceof Uint8Array) {
    if (entry.length !== HASH_SIZE) fail("a leaf hash is 32 bytes");
    return { leaf: new Uint8Array(entry) };
  }
  const wrapped = typeof entry.entry === "object" && entry.entry !== null && !Array.isArray(entry.entry);
  const body = (wrapped ? entry.entry : entry) as Record<string, unknown>;
  const leaf = await leafHash(utf8(canonicalJson(body)));
  if (wrapped && typeof entry.leafHash === "string") {
    const served = fromBase64(entry.leafHash);
    if (served === undefined || !equalBytes(served, leaf)) fail("the entry body does not hash to its leaf hash");
  }
  return { leaf, body };
}

/**
 * Check that a receipt proves the entry is in the log the service signed.
 *
 * `payloadOrReceipt`: the final webhook payload, or its `audit` object. `entry`:
 * the entry (Client.auditEntry) or its leaf hash. `jwks`: the service's keys; pin
 * them, since keys fetched from the same service prove nothing against it.
 * `keyName` and `origin` are the checkpoint's (Client.auditCheckpoint; fixed per
 * deployment). Throws ReceiptVerificationError unless everything checks out.
 */
export async function verifyReceipt(
  payloadOrReceipt: { audit?: AuditReceipt } | AuditReceipt,
  entry: EntryLike,
  jwks: Jwks,
  keyName: string,
  origin: string,
): Promise<SignedCheckpoint> {
  const receipt = ("audit" in payloadOrReceipt ? payloadOrReceipt.audit : payloadOrReceipt) as
    | Partial<AuditReceipt>
    | undefined;
  if (receipt === undefined || receipt === null || typeof receipt !== "object") fail("the payload carries no receipt");
  const { index, checkpoint, inclusionProof } = receipt!;
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) fail("'index' must be a non-negative integer");
  if (typeof checkpoint !== "string") fail("'checkpoint' must be a signed note");
  if (!Array.isArray(inclusionProof) || inclusionProof.length > MAX_PROOF) fail("'inclusionProof' must be a list of hashes");
  const proof = inclusionProof!.map((p) => (typeof p === "string" ? fromBase64(p) : undefined));
  if (proof.some((p) => p === undefined)) fail("'inclusionProof' must be base64");
  const { leaf, body } = await entryLeaf(entry);
  if (body !== undefined && body.index !== index) fail("the entry records another index than the receipt");
  let keys: PublicKeyEntry[];
  try {
    keys = await ed25519Keys(jwks);
  } catch (cause) {
    throw new ReceiptVerificationError("Audit receipt does not verify: unusable JWKS", { cause });
  }
  const signed = await verifyCheckpoint(checkpoint!, keys, keyName, origin);
  const root = await rootFromInclusion(leaf, index!, signed.size, proof as Bytes[]);
  if (!equalBytes(root, signed.root)) fail("the proof does not lead to the signed root");
  return signed;
}
