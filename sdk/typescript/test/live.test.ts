// The SDK against a real `bioverify serve`: create -> capture (the Python capture
// SDK's CLI) -> webhook received on loopback and verified -> receipt verified;
// tampering refused; a 503 with Retry-After retried and a 400 not.

import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Client,
  PermanentError,
  ReceiptVerificationError,
  WebhookVerificationError,
  verifyReceipt,
  verifyWebhook,
  type CreateSessionResponse,
  type Jwks,
  type WebhookPayload,
} from "../src/index.js";
import { FaultProxy, LiveServer, Receiver, requiredEnv, type Credentials, type Received } from "./harness.js";

const FACE = requiredEnv("BIOVERIFY_TEST_FACE", "a JPEG/PNG photo of one face");

describe("the SDK against a live bioverify serve", () => {
  const server = new LiveServer();
  const receiver = new Receiver();
  let proxy: FaultProxy;
  let creds: Credentials;
  let slept: number[];
  let sdk: Client;
  let session: CreateSessionResponse;
  let hook: Received;
  let payload: WebhookPayload;
  let jwks: Jwks;

  before(async () => {
    await server.start();
    await receiver.start();
    proxy = new FaultProxy(server.url);
    await proxy.start();
    creds = server.createClient();
    slept = [];
    sdk = new Client({
      baseUrl: proxy.url,
      apiKey: creds.apiKey,
      clientId: creds.clientId,
      clientSecret: creds.clientSecret ?? undefined,
      sleep: async (ms) => void slept.push(ms),
    });
  });

  after(async () => {
    await proxy?.stop();
    await receiver.stop();
    await server.stop();
  });

  it("retries a 503 after its Retry-After with the same idempotency key: one session", async () => {
    proxy.faults.push("503");
    session = await sdk.createSession({
      type: "ENROLL",
      liveness: "passive",
      callback: { url: receiver.url },
      transactionID: "ts-order-1",
    });
    const creates = proxy.seen.filter((r) => r.method === "POST");
    assert.equal(creates.length, 2);
    assert.equal(creates[0]?.headers["idempotency-key"], creates[1]?.headers["idempotency-key"]);
    assert.deepEqual(slept, [1000]); // the server's Retry-After: 1, not the SDK's own backoff
    assert.equal(session.status, "PENDING");
    assert.match(session.launchUrl, /\/capture\/[^/]+$/);
    const read = await sdk.getSession(session.sessionId);
    assert.equal(read.transactionID, "ts-order-1");
  });

  it("does not retry a 400, and says it is permanent", async () => {
    const before = proxy.seen.length;
    slept.length = 0;
    await assert.rejects(sdk.createSession({ type: "ENROLL", sessionExpiry: 5 }), (error: unknown) => {
      assert.ok(error instanceof PermanentError);
      assert.equal(error.status, 400);
      assert.match(error.message, /sessionExpiry/);
      assert.ok(error.requestId);
      return true;
    });
    assert.equal(proxy.seen.length, before + 1);
    assert.deepEqual(slept, []);
  });

  it("completes the capture with the Python capture SDK", () => {
    const outcome = JSON.parse(server.cli("capture", session.launchUrl, "--image", FACE, "--json"));
    assert.equal(outcome.status, "SUCCESS", JSON.stringify(outcome));
    assert.equal(outcome.sessionId, session.sessionId);
  });

  it("verifies the real webhook with the v1 secret and the v1a JWKS key", async () => {
    [hook] = (await receiver.waitFor(1)) as [Received];
    payload = await verifyWebhook(hook.body, hook.headers as Record<string, string>, creds.webhookSecret);
    assert.equal(payload.sessionId, session.sessionId);
    assert.equal(payload.status, "SUCCESS");
    assert.equal(payload.transactionID, "ts-order-1");
    jwks = await sdk.jwks();
    const again = await verifyWebhook(Buffer.from(hook.body), hook.headers as Record<string, string>, jwks);
    assert.deepEqual(again, payload);
    const polled = await sdk.waitForResult(session.sessionId, { timeoutMs: 10_000 });
    assert.equal(polled.status, "SUCCESS");
    assert.deepEqual((await sdk.getWebhookPayload(session.sessionId)).audit, payload.audit);
  });

  it("refuses a tampered webhook, a wrong secret and a stale timestamp", async () => {
    const headers = hook.headers as Record<string, string>;
    const tampered = hook.body.replace('"SUCCESS"', '"FAILED"');
    assert.notEqual(tampered, hook.body);
    const other = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const cases: Array<[string, string | Jwks, number | undefined]> = [
      [tampered, creds.webhookSecret, undefined],
      [tampered, jwks, undefined],
      [hook.body, other, undefined],
      [hook.body, creds.webhookSecret, Date.now() / 1000 + 301],
    ];
    for (const [body, key, now] of cases) {
      await assert.rejects(verifyWebhook(body, headers, key, { now }), WebhookVerificationError);
    }
    const unsigned = { ...headers, "webhook-signature": "" };
    await assert.rejects(verifyWebhook(hook.body, unsigned, creds.webhookSecret), WebhookVerificationError);
  });

  it("verifies the receipt and refuses a tampered one", async () => {
    const checkpoint = await sdk.auditCheckpoint();
    const audit = payload.audit;
    assert.ok(audit, "the final webhook carries an audit receipt");
    const entry = await sdk.auditEntry(audit.index);
    assert.equal(entry.entry.event, "session:state:ended");
    const signed = await verifyReceipt(payload, entry, jwks, checkpoint.keyName, checkpoint.origin);
    assert.ok(signed.size > audit.index);

    const flipped = (b64: string): string => {
      const bytes = Buffer.from(b64, "base64");
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return bytes.toString("base64");
    };
    const badProof = { ...audit, inclusionProof: audit.inclusionProof.map((p, i) => (i === 0 ? flipped(p) : p)) };
    const badIndex = { ...audit, index: audit.index + 1 };
    const badNote = { ...audit, checkpoint: audit.checkpoint.replace(/\n\d+\n/, (m) => `\n${Number(m.trim()) + 1}\n`) };
    const badEntry = { ...entry, entry: { ...entry.entry, event: "session:state:created" } };
    const { publicKey } = generateKeyPairSync("ed25519");
    const strangerJwks = { keys: [publicKey.export({ format: "jwk" }) as Record<string, unknown>] };
    const cases: Array<[Parameters<typeof verifyReceipt>[0], Parameters<typeof verifyReceipt>[1], Jwks, string]> = [
      [badProof, entry, jwks, checkpoint.origin],
      [badIndex, entry, jwks, checkpoint.origin],
      [badNote, entry, jwks, checkpoint.origin],
      [audit, badEntry, jwks, checkpoint.origin],
      [audit, entry, strangerJwks, checkpoint.origin],
      [audit, entry, jwks, "another/log"],
    ];
    if (audit.inclusionProof.length === 0) cases.shift(); // a one-entry tree has no proof to flip
    for (const [receipt, leaf, keys, origin] of cases) {
      await assert.rejects(verifyReceipt(receipt, leaf, keys, checkpoint.keyName, origin), ReceiptVerificationError);
    }
  });

  it("signs requests with SLC instead of a secret, and a stranger's key is refused", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const pemFile = join(server.dataDir, "slc.pub.pem");
    writeFileSync(pemFile, publicKey.export({ type: "spki", format: "pem" }));
    const slc = server.createClient("--public-key", pemFile);
    const signed = new Client({
      baseUrl: server.url,
      apiKey: slc.apiKey,
      clientId: slc.clientId,
      signingKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    });
    const created = await signed.createSession({ type: "ENROLL", customerId: "user-42@example.com" });
    assert.equal((await signed.getSession(created.sessionId)).customerId, "user-42@example.com");

    const stranger = generateKeyPairSync("ed25519").privateKey;
    const forged = new Client({
      baseUrl: server.url,
      apiKey: slc.apiKey,
      clientId: slc.clientId,
      signingKey: stranger.export({ type: "pkcs8", format: "pem" }).toString(),
      retry: { maxAttempts: 1 },
    });
    await assert.rejects(forged.getSession(created.sessionId), (e: unknown) => e instanceof PermanentError && e.status === 401);
  });
});
