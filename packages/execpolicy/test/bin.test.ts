/**
 * End-to-end: the published bin. It runs `dist/`, which turbo's test task builds first (test
 * depends on build). Run bare, build first: `pnpm --filter @bottlekit/execpolicy build`.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/execpolicy.js", import.meta.url));
const distCli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

/** The message a run without `dist/` fails with, instead of an obscure module-not-found exit code. */
function missingBuildMessage(cli: string): string | undefined {
  return existsSync(cli)
    ? undefined
    : `${cli} does not exist: these tests run the built bin. Build first with ` +
        "`pnpm --filter @bottlekit/execpolicy build` (or run the tests through turbo, " +
        "whose test task depends on build), then re-run the tests.";
}

let cacheDir: string;
beforeAll(async () => {
  const missing = missingBuildMessage(distCli);
  if (missing) throw new Error(missing);
  cacheDir = await mkdtemp(join(tmpdir(), "execpolicy-bin-cache-"));
});
afterAll(async () => {
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

function runBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      // never the user's real cache
      { env: { ...process.env, NO_COLOR: "1", BOTTLEKIT_EXECPOLICY_CACHE_DIR: cacheDir } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe("execpolicy bin", () => {
  it("without dist/ the tests fail with a message saying to build first", () => {
    expect(missingBuildMessage(distCli)).toBeUndefined();
    expect(missingBuildMessage(join(cacheDir, "dist", "cli.js"))).toMatch(
      /cli\.js does not exist: .*pnpm --filter @bottlekit\/execpolicy build/,
    );
  });

  it("the bin itself says to build first when dist/ is missing", async () => {
    const unbuilt = join(cacheDir, "unbuilt");
    await mkdir(join(unbuilt, "bin"), { recursive: true });
    await copyFile(bin, join(unbuilt, "bin", "execpolicy.js"));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(unbuilt, "bin", "execpolicy.js"), "--help"], (err, _o, e) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stderr: e }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(unbuilt, "dist", "cli.js")} is missing`);
    expect(r.stderr).toContain("pnpm --filter @bottlekit/execpolicy build");
    await rm(unbuilt, { recursive: true, force: true });
  });

  it("checks a script against the example policies and gates with --fail-on", async () => {
    const args = [
      "check",
      "-r",
      example("policy.rules"),
      "-r",
      example("policy.yaml"),
      "--fail-on",
      "forbidden",
      "--shell",
      "git status && git -C repo push",
    ];
    const cold = await runBin(args);
    expect(cold.code).toBe(3);
    const doc = JSON.parse(cold.stdout);
    expect(doc.decision).toBe("forbidden");
    expect(cold.stderr).toBe("");
    // both files are now in the compiled-policy cache; a warm run answers the same
    expect((await readdir(cacheDir)).filter((f) => f.endsWith(".json"))).toHaveLength(2);
    expect(await runBin(args)).toEqual(cold);
  });

  it("the example policies pass their own tests", async () => {
    const r = await runBin(["test", example("policy.rules"), example("policy.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok ");
  });
});
