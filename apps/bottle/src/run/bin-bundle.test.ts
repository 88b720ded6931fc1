/**
 * `bottle run` as the built bin runs it: one bundled file (dist/bottle-run.cjs) compiled with the
 * code cache (turbo's test task builds first). The sandbox, controller and probe are the real ones.
 */
import { isAscii } from "node:buffer";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { agentProject } from "./test-helpers.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, "..", "..", "bin", "bottle.js");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-run-bundle-"));
const project = agentProject();
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(project, { recursive: true, force: true });
});

function bottle(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", ...env }, timeout: 120_000 },
      (error, out, err) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, out, err });
      },
    );
  });
}

describe("bottle run through the bundled bin", () => {
  it("runs the command in the sandbox after the probe, stores a code cache, then uses it", async () => {
    const home = path.join(root, "home");
    const cacheDir = path.join(root, "cache");
    const env = { BOTTLEKIT_CODE_CACHE_DIR: cacheDir, HOME: root };
    const args = ["run", "--home", home, "--cwd", project, "--"];

    const first = await bottle([...args, "sh", "-c", "echo inside; exit 7"], env);
    expect(first.err).toContain("startup probe");
    expect(first.err).not.toContain("✗");
    expect(first.out).toBe("inside\n");
    expect(first.code).toBe(7);
    const caches = fs.readdirSync(cacheDir).filter((n) => n.endsWith(".v8cache"));
    expect(caches).toHaveLength(1);
    const written = fs.statSync(path.join(cacheDir, caches[0] as string)).mtimeMs;

    const second = await bottle([...args, "/bin/true"], env);
    expect(second.err).toContain("startup probe");
    expect(second.code).toBe(0);
    // A hit is not written again.
    expect(fs.statSync(path.join(cacheDir, caches[0] as string)).mtimeMs).toBe(written);

    // Global options before `run`, and no cache at all.
    const third = await bottle(["--home", home, "--cwd", project, "run", "--", "/bin/false"], {
      BOTTLEKIT_CODE_CACHE_DIR: "off",
      HOME: root,
    });
    expect(third.code).toBe(1);
    expect(third.err).toContain("startup probe");
  });

  it("the bundle is ASCII, so the loader decodes it as Latin-1 (its fast path)", () => {
    const bundle = fs.readFileSync(path.join(here, "..", "..", "dist", "bottle-run.cjs"));
    expect(bundle.length).toBeGreaterThan(0);
    expect(isAscii(bundle)).toBe(true);
  });

  it("an unknown option of run is a usage error (exit 2) from the bundle too", async () => {
    const r = await bottle(["run", "--no-such-flag"], { BOTTLEKIT_CODE_CACHE_DIR: "off" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("--no-such-flag");
  });
});
