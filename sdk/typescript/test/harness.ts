// Test harness: a real `bioverify serve` on loopback, its CLI, a webhook receiver
// and a fault-injecting proxy. Everything listens on 127.0.0.1, ephemeral ports.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The server's CLI: $BIOVERIFY_BIN, else the repository's .venv. */
export const BIOVERIFY_BIN = process.env.BIOVERIFY_BIN ?? join(PACKAGE_ROOT, "..", "..", ".venv", "bin", "bioverify");

export function requiredEnv(name: string, what: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must name ${what} (the pytest wrapper sets it)`);
  return value;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return port;
}

export interface Credentials {
  apiKey: string;
  clientId: string;
  clientSecret: string | null;
  webhookSecret: string;
}

/** One `bioverify serve` with its own data directory, stopped by stop(). */
export class LiveServer {
  url = "";
  private proc: ChildProcess | undefined;
  private log = "";
  readonly dataDir = mkdtempSync(join(tmpdir(), "bioverify-ts-"));
  readonly env: NodeJS.ProcessEnv;

  constructor() {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("BIOVERIFY_")) env[k] = v;
    this.env = {
      ...env,
      BIOVERIFY_DATA_DIR: this.dataDir,
      BIOVERIFY_ALLOW_PRIVATE_CALLBACKS: "1",
      BIOVERIFY_WEBHOOK_TEST_SCHEDULE: "1",
      BIOVERIFY_ENGINE_WORKERS: "0",
      BIOVERIFY_SWEEP_INTERVAL: "0.2",
      BIOVERIFY_CHECKPOINT_SECONDS: "1",
      BIOVERIFY_LOG_LEVEL: "warning",
    };
  }

  /** Run a `bioverify` command to completion; its stdout (throws on a non-zero exit). */
  cli(...args: string[]): string {
    const done = spawnSync(BIOVERIFY_BIN, args, { env: this.env, encoding: "utf8", timeout: 120_000 });
    if (done.status !== 0) {
      throw new Error(`bioverify ${args[0]} exited ${done.status}: ${done.stderr}${done.stdout}`);
    }
    return done.stdout;
  }

  createClient(...extra: string[]): Credentials {
    return JSON.parse(this.cli("clients", "create", "--name", `ts-${Date.now()}`, ...extra, "--json"));
  }

  async start(): Promise<void> {
    this.cli("migrate");
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.env.BIOVERIFY_PUBLIC_URL = this.url;
    this.proc = spawn(BIOVERIFY_BIN, ["serve", "--host", "127.0.0.1", "--port", String(port)], {
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    this.proc.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`bioverify serve exited: ${this.log.slice(-2000)}`);
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`bioverify serve did not become ready: ${this.log.slice(-2000)}`);
      await new Promise((ok) => setTimeout(ok, 100)); // bounded poll of another process's start-up
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((ok) => proc.once("exit", ok));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const readBody = (req: NodeJS.ReadableStream): Promise<Buffer> =>
  new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => ok(Buffer.concat(chunks)));
    req.on("error", fail);
  });

/** A webhook receiver on loopback that records every POST and answers 200. */
export class Receiver {
  readonly received: Received[] = [];
  url = "";
  private waiters: Array<() => void> = [];
  private readonly server = createServer(async (req, res) => {
    const body = (await readBody(req)).toString("utf8");
    this.received.push({ headers: req.headers, body });
    res.writeHead(200).end("ok");
    for (const wake of this.waiters.splice(0)) wake();
  });

  async start(): Promise<void> {
    this.url = `${await listen(this.server)}/hook`;
  }

  /** Resolves once `count` webhooks arrived; rejects after `timeoutMs` (bounded). */
  async waitFor(count: number, timeoutMs = 30_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} webhooks, got ${this.received.length}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
    return [...this.received];
  }

  stop(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

/** Forwards to the real server; a queued fault ("503") answers the next request instead. */
export class FaultProxy {
  readonly faults: string[] = [];
  readonly seen: Array<{ method: string; path: string; headers: IncomingHttpHeaders }> = [];
  url = "";
  private readonly server = createServer(async (req, res) => {
    const body = await readBody(req);
    this.seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    if (this.faults.shift() === "503") {
      res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
      res.end(JSON.stringify({ status: "error", message: "overloaded", errorCodes: [], requestId: "proxy" }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host") headers[k] = v;
    const upstream = await fetch(this.target + (req.url ?? "/"), {
      method: req.method ?? "GET",
      headers,
      body: body.length ? new Uint8Array(body) : undefined,
    });
    const answer = Object.fromEntries(upstream.headers);
    delete answer["transfer-encoding"];
    delete answer["content-encoding"];
    res.writeHead(upstream.status, answer);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });

  constructor(private readonly target: string) {}

  async start(): Promise<void> {
    this.url = await listen(this.server);
  }

  stop(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}
