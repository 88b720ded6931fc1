/**
 * End-to-end: the published bin. It runs `dist/`, which turbo's test task builds first (test
 * depends on build). Run bare, build first: `pnpm --filter @bottlekit/execpolicy build`.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/execpolicy.cjs", import.meta.url));
const distCli = fileURLToPath(new URL("../dist/cli.cjs", import.meta.url));
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

function runBin(
  args: string[],
  cache: string = cacheDir,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      // never the user's real cache
      { env: { ...process.env, NO_COLOR: "1", BOTTLEKIT_EXECPOLICY_CACHE_DIR: cache } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe("execpolicy bin", () => {
  it("without dist/ the tests fail with a message saying to build first", () => {
    expect(missingBuildMessage(distCli)).toBeUndefined();
    expect(missingBuildMessage(join(cacheDir, "dist", "cli.cjs"))).toMatch(
      /cli\.cjs does not exist: .*pnpm --filter @bottlekit\/execpolicy build/,
    );
  });

  it("the bin itself says to build first when dist/ is missing", async () => {
    const unbuilt = join(cacheDir, "unbuilt");
    await mkdir(join(unbuilt, "bin"), { recursive: true });
    await copyFile(bin, join(unbuilt, "bin", "execpolicy.cjs"));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(unbuilt, "bin", "execpolicy.cjs"), "--help"], (err, _o, e) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stderr: e }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(unbuilt, "dist", "cli.cjs")} is missing`);
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
    // only the load-time notes about exec-capable options of allowed git/rg rules
    expect(cold.stderr.split("\n").filter((l) => l && !l.includes("exec-capable options"))).toEqual(
      [],
    );
    // both files are now in the compiled-policy cache, the CLI's code in the code cache;
    // a warm run answers the same
    const files = await readdir(cacheDir);
    expect(files.filter((f) => f.endsWith(".json"))).toHaveLength(2);
    expect(files.filter((f) => f.endsWith(".v8cache"))).toHaveLength(1);
    expect(await runBin(args)).toEqual(cold);
    // and so does a run with every cache off
    expect(await runBin(args, "off")).toEqual(cold);
  });

  it("a long script does not make the run wait for optimized wasm code", async () => {
    // Without the bin's V8 flags, parsing a script of a few dozen characters starts an
    // optimizing compile of the grammar's lexer (~400 ms; Node 22+ ignores --liftoff-only set at
    // runtime, Node 20 needs it) and the process waits for it before exiting. Compared with an
    // argv check (no parser at all) in the same run, fastest of three, so machine load cancels.
    const rules = ["check", "-r", example("policy.rules")];
    const long = `${"a".repeat(60)} && git status > out.log; (cd web && npm run build) | tee b.log`;
    // CPU time of the whole child (all threads, so an optimizing compile counts), read inside it
    // at exit: other processes competing for the cores do not change it, wall time would
    const dir = await mkdtemp(join(tmpdir(), "execpolicy-cpu-"));
    const preload = join(dir, "cpu.cjs");
    const cpuFile = join(dir, "cpu.txt");
    await writeFile(
      preload,
      `process.on("exit", () => { const c = process.cpuUsage(); require("node:fs").writeFileSync(${JSON.stringify(cpuFile)}, String((c.user + c.system) / 1000)); });`,
    );
    const cpuOf = (args: string[]) =>
      new Promise<number>((resolve, reject) => {
        execFile(
          process.execPath,
          ["--require", preload, bin, ...rules, ...args],
          { env: { ...process.env, NO_COLOR: "1", BOTTLEKIT_EXECPOLICY_CACHE_DIR: "off" } },
          (err) => {
            if (err) reject(err);
            else readFile(cpuFile, "utf8").then((t) => resolve(Number(t)), reject);
          },
        );
      });
    const fastest = async (args: string[]) => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) best = Math.min(best, await cpuOf(args));
      return best;
    };
    const argv = await fastest(["--", "git", "status"]);
    expect(await fastest(["--shell", long])).toBeLessThan(argv + 150);
    await rm(dir, { recursive: true, force: true });
  });

  it("loading the CLI bundle does not load node:child_process (commander gets a lazy proxy)", async () => {
    const code = `require(${JSON.stringify(distCli)}); process.stdout.write(String(process.moduleLoadList.some((m) => m.includes("child_process"))));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["-e", code], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    expect(out).toBe("false");
  });

  it("deep nesting and a 1 MB script answer prompt; --fail-on prompt exits 3 (issue 16)", async () => {
    const deep = `${"(".repeat(20_000)}ls${")".repeat(20_000)}`;
    const r = await runBin([
      "check",
      "-r",
      example("policy.rules"),
      "--fail-on",
      "prompt",
      "--shell",
      deep,
    ]);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).decision).toBe("prompt");
    expect(r.stderr).not.toContain("unexpected");
    const chain = `${"ls && ".repeat(20_000)}ls`;
    const c = await runBin([
      "check",
      "-r",
      example("policy.rules"),
      "--fail-on",
      "prompt",
      "--shell",
      chain,
    ]);
    expect(c.code).toBe(3);
  });

  it("piped into head, it ends quietly instead of crashing with EPIPE (issue 23)", async () => {
    const script = "ls -la; ".repeat(3000);
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        "/bin/bash",
        [
          "-c",
          `"$0" "$1" check -r "$2" --pretty --shell "$3" | head -c 10 >/dev/null; echo "\${PIPESTATUS[0]}" >&2`,
          process.execPath,
          bin,
          example("policy.rules"),
          script,
        ],
        { env: { ...process.env, NO_COLOR: "1", BOTTLEKIT_EXECPOLICY_CACHE_DIR: cacheDir } },
        (err, _stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr }),
      );
    });
    expect(r.code).toBe(0);
    // the bin's own exit status (PIPESTATUS) is 0 and nothing but load-time warnings was printed
    const lines = r.stderr.split("\n").filter((l) => l && !l.includes("exec-capable options"));
    expect(lines).toEqual(["0"]);
  });

  it("the example policies pass their own tests", async () => {
    const r = await runBin(["test", example("policy.rules"), example("policy.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok ");
  });
});
