// `npm pack` gives a package with no runtime dependencies that installs and imports alone.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const npm = (cwd: string, ...args: string[]): string =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8", timeout: 300_000 });

describe("npm pack", () => {
  const work = mkdtempSync(join(tmpdir(), "bioverify-pack-"));
  after(() => rmSync(work, { recursive: true, force: true }));

  it("packs dist/ with an empty dependencies list, and the tarball works on its own", () => {
    const [packed] = JSON.parse(npm(PACKAGE_ROOT, "pack", "--json", "--pack-destination", work)) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    assert.ok(packed);
    const files = packed.files.map((f) => f.path);
    assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts"), files.join(" "));
    assert.ok(files.includes("dist/catalogue.js"));
    assert.deepEqual(files.filter((f) => !f.startsWith("dist/") && !["package.json", "README.md"].includes(f)), []);

    const tarball = join(work, packed.filename);
    execFileSync("tar", ["-xzf", tarball, "-C", work, "package/package.json"]);
    const manifest = JSON.parse(readFileSync(join(work, "package", "package.json"), "utf8"));
    assert.deepEqual(manifest.dependencies ?? {}, {});
    assert.equal(manifest.peerDependencies, undefined);
    assert.equal(manifest.optionalDependencies, undefined);

    // A fresh project installs the tarball alone (nothing else comes) and imports it.
    const app = join(work, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "integrator-app", private: true, type: "module" }));
    npm(app, "install", "--offline", tarball);
    const installed = JSON.parse(npm(app, "ls", "--all", "--json")).dependencies;
    assert.deepEqual(Object.keys(installed), ["@bioverify/client"]);
    assert.equal(installed["@bioverify/client"].dependencies, undefined);
    const probe = "import('@bioverify/client').then(m => console.log(typeof m.Client, typeof m.verifyWebhook, typeof m.verifyReceipt))";
    assert.equal(execFileSync("node", ["-e", probe], { cwd: app, encoding: "utf8" }).trim(), "function function function");
  });
});
