// Pure parts of the SDK, without a server: catalogue classification, retries,
// canonical JSON, webhook signatures and Merkle proofs built in the test.

import assert from "node:assert/strict";
import { createHash, createHmac, generateKeyPairSync, sign } from "node:crypto";
import { describe, it } from "node:test";

import {
  CATALOGUE,
  Client,
  PermanentError,
  TransientError,
  WebhookVerificationError,
  canonicalJson,
  errorClass,
  parseRetryAfter,
  rootFromInclusion,
  tilePath,
  verifyWebhook,
} from "../src/index.js";

describe("error classification comes from the catalogue", () => {
  it("every code decides permanent or transient whatever the status", () => {
    assert.ok(CATALOGUE.length >= 14);
    for (const row of CATALOGUE) {
      for (const status of [400, 409, 422, 503]) {
        const expected = row.retry === "permanent" ? PermanentError : TransientError;
        assert.equal(errorClass(status, [row.code]), expected, `${row.name} under ${status}`);
      }
    }
  });

  it("without a code the status decides, and a legacy alias resolves", () => {
    assert.equal(errorClass(503, []), TransientError);
    assert.equal(errorClass(429, []), TransientError);
    assert.equal(errorClass(400, []), PermanentError);
    assert.equal(errorClass(undefined, []), TransientError);
    assert.equal(errorClass(410, [-13]), errorClass(410, [-8]));
    const error = new TransientError("expired", { status: 410, errorCodes: [-8] });
    assert.equal(error.code?.name, "SESSION_EXPIRED");
    assert.ok(error.remedy);
    assert.equal(error.requestRetryable, false); // a new session, not the same request
  });
});

describe("retries", () => {
  it("parses Retry-After as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("7"), 7);
    assert.equal(parseRetryAfter(new Date(61_000).toUTCString(), 1_000), 60);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });

  it("gives up after maxAttempts with jittered, growing waits", async () => {
    let calls = 0;
    const waits: number[] = [];
    const client = new Client({
      baseUrl: "http://127.0.0.1:9",
      apiKey: "k",
      retry: { maxAttempts: 3, random: () => 0.5 },
      sleep: async (ms) => void waits.push(ms),
      fetch: async () => {
        calls++;
        return new Response("upstream down", { status: 502 });
      },
    });
    await assert.rejects(client.jwks(), (e: unknown) => e instanceof TransientError && e.status === 502);
    assert.equal(calls, 3);
    assert.deepEqual(waits, [375, 750]); // base/2 + 0.5 * base/2 for base 500, 1000
  });

  it("a bad signing key and a redirect fail at once, without retries", async () => {
    let calls = 0;
    const counting = async () => {
      calls++;
      return new Response(null, { status: 302, headers: { location: "http://elsewhere.test/" } });
    };
    const badKey = new Client({ baseUrl: "http://127.0.0.1:9", apiKey: "k", clientId: "c", signingKey: "not a key", fetch: counting });
    await assert.rejects(badKey.getSession("s"), (e: unknown) => !(e instanceof TransientError));
    assert.equal(calls, 0);
    const redirected = new Client({ baseUrl: "http://127.0.0.1:9", apiKey: "k", fetch: counting, sleep: async () => undefined });
    await assert.rejects(redirected.jwks(), (e: unknown) => e instanceof PermanentError && e.status === 302);
    assert.equal(calls, 1);
  });

  it("a network failure is transient and retried", async () => {
    let calls = 0;
    const client = new Client({
      baseUrl: "http://127.0.0.1:9",
      apiKey: "k",
      sleep: async () => undefined,
      fetch: async () => {
        calls++;
        if (calls < 2) throw new TypeError("fetch failed");
        return Response.json({ keys: [] });
      },
    });
    assert.deepEqual(await client.jwks(), { keys: [] });
    assert.equal(calls, 2);
  });
});

describe("canonical JSON (RFC 8785)", () => {
  it("sorts keys by UTF-16 code units and writes numbers as ECMAScript does", () => {
    assert.equal(canonicalJson({ b: [1, 1e21, 0.1], a: { "\u20ac": 1, "\ud83d\ude00": 2, z: null } }),
      '{"a":{"z":null,"\u20ac":1,"\ud83d\ude00":2},"b":[1,1e+21,0.1]}');
    assert.throws(() => canonicalJson({ x: Number.NaN }), TypeError);
  });
});

describe("webhook signatures", () => {
  const secretBytes = Buffer.alloc(24, 3);
  const secret = `whsec_${secretBytes.toString("base64")}`;
  const body = '{"sessionId":"s-1","status":"SUCCESS"}';
  const now = 1_800_000_000;
  const signed = (content: string) => createHmac("sha256", secretBytes).update(content).digest("base64");
  const headers = {
    "webhook-id": "msg_1",
    "webhook-timestamp": String(now),
    "webhook-signature": `v1,bad v1,${signed(`msg_1.${now}.${body}`)}`,
  };

  it("accepts any matching signature among several (rotation)", async () => {
    const payload = await verifyWebhook(body, headers, ["whsec_" + Buffer.alloc(24, 9).toString("base64"), secret], { now });
    assert.equal(payload.sessionId, "s-1");
  });

  it("accepts a v1a Ed25519 signature against a JWKS", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const sig = sign(null, Buffer.from(`msg_1.${now}.${body}`), privateKey).toString("base64");
    const jwks = { keys: [publicKey.export({ format: "jwk" }) as Record<string, unknown>] };
    const v1a = { ...headers, "webhook-signature": `v1a,${sig}` };
    assert.equal((await verifyWebhook(body, v1a, jwks, { now })).status, "SUCCESS");
    await assert.rejects(verifyWebhook(body, v1a, secret, { now }), WebhookVerificationError);
  });

  it("refuses a changed id, body or timestamp", async () => {
    for (const [b, h] of [
      [body.replace("SUCCESS", "FAILED"), headers],
      [body, { ...headers, "webhook-id": "msg_2" }],
      [body, { ...headers, "webhook-timestamp": String(now + 1) }],
    ] as const) {
      await assert.rejects(verifyWebhook(b, h, secret, { now }), WebhookVerificationError);
    }
    await assert.rejects(verifyWebhook(body, headers, secret, { now: now + 301 }), WebhookVerificationError);
    await assert.rejects(verifyWebhook(body, headers, [], { now }), TypeError);
  });
});

describe("RFC 9162 inclusion", () => {
  const h = (...parts: Buffer[]) => new Uint8Array(createHash("sha256").update(Buffer.concat(parts)).digest());
  const leaf = (i: number) => h(Buffer.from([0]), Buffer.from(`entry ${i}`));
  const node = (l: Uint8Array, r: Uint8Array) => h(Buffer.from([1]), Buffer.from(l), Buffer.from(r));
  // The recursive definitions of RFC 9162 section 2.1, written independently of the SDK.
  const mth = (leaves: Uint8Array[]): Uint8Array => {
    if (leaves.length === 1) return leaves[0]!;
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return node(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
  };
  const path = (m: number, leaves: Uint8Array[]): Uint8Array[] => {
    if (leaves.length === 1) return [];
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return m < k
      ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
      : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
  };

  it("builds receipts from tiles laid out by the tlog-tiles rules; a wrong tile changes them", async () => {
    assert.equal(tilePath(0, 1234067), "tile/0/x001/x234/067");
    assert.equal(tilePath(2, 0, 7), "tile/2/000.p/7");
    for (const size of [1, 255, 256, 257, 600, 65_537]) {
      const leaves = Array.from({ length: size }, (_, i) => leaf(i));
      // Level L holds the hashes of complete 256**L-leaf subtrees, 256 to a tile.
      const levels: Uint8Array[][] = [leaves];
      while (levels[levels.length - 1]!.length >= 256) {
        const below = levels[levels.length - 1]!;
        const above: Uint8Array[] = [];
        for (let k = 0; (k + 1) * 256 <= below.length; k++) above.push(mth(below.slice(k * 256, (k + 1) * 256)));
        levels.push(above);
      }
      let corrupt = false;
      const client = new Client({
        baseUrl: "http://bv.test",
        apiKey: "k",
        fetch: async (input) => {
          const path = new URL(String(input)).pathname;
          const found = /^\/v2\/audit\/tlog\/tile\/(\d+)\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d+))?$/.exec(path);
          assert.ok(found, path);
          const level = Number(found[1]);
          const index = Number(found[2]!.replace(/[x/]/g, ""));
          const width = Number(found[3] ?? 256);
          const hashes = levels[level]!.slice(index * 256, index * 256 + width);
          assert.equal(hashes.length, width, "the SDK asked for hashes the tree does not have");
          const body = Buffer.concat(hashes.map((x) => Buffer.from(x)));
          if (corrupt) body[0] = body[0]! ^ 1;
          return new Response(body);
        },
      });
      const note = `bioverify/test\n${size}\n${Buffer.from(mth(leaves)).toString("base64")}\n\n`;
      for (const index of new Set([0, Math.floor(size / 2), size - 1])) {
        const receipt = await client.tlogReceipt(index, note);
        const expected = path(index, leaves).map((x) => Buffer.from(x).toString("base64"));
        assert.deepEqual(receipt.inclusionProof, expected, `size ${size} index ${index}`);
      }
      corrupt = true;
      if (size > 1) {
        const wrong = await client.tlogReceipt(size - 1, note);
        assert.notDeepEqual(wrong.inclusionProof, path(size - 1, leaves).map((x) => Buffer.from(x).toString("base64")));
      }
    }
  });

  it("every leaf of trees of 1..20 leaves proves to the root; a changed leaf does not", async () => {
    for (let size = 1; size <= 20; size++) {
      const leaves = Array.from({ length: size }, (_, i) => leaf(i));
      const root = mth(leaves);
      for (let index = 0; index < size; index++) {
        const proof = path(index, leaves);
        assert.deepEqual(await rootFromInclusion(leaves[index]!, index, size, proof), root);
        assert.notDeepEqual(await rootFromInclusion(leaf(size + 1), index, size, proof), root);
      }
    }
    await assert.rejects(rootFromInclusion(leaf(0), 3, 3, []));
  });
});
