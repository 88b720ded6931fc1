import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The built bin (turbo's test task builds first). */
export const BIN = fileURLToPath(new URL("../../bin/bottle-gateway.js", import.meta.url));

export interface RunningBin {
  child: ChildProcess;
  url: Promise<string>;
  /** JSON log records printed so far (`--json-logs`). */
  logs(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Starts `bottle-gateway up --config FILE --listen 127.0.0.1:0 --json-logs`. */
export function startBin(config: string, env: NodeJS.ProcessEnv): RunningBin {
  const child = spawn(
    process.execPath,
    [BIN, "up", "--config", config, "--listen", "127.0.0.1:0", "--json-logs"],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let err = "";
  const url = new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const line = err.split("\n").find((l) => l.includes('"event":"listening"'));
      if (line !== undefined) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
  });
  url.catch(() => undefined);
  return {
    child,
    url,
    logs: () =>
      err
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export interface AgentRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an agent CLI. Never as root: when the tests run as root (CI), the agent runs as `nobody`
 * through `setpriv` (util-linux), with a HOME and a working directory it owns. Killed after
 * `timeoutMs` (the caller's bound on how long the user may wait).
 */
export function runAgent(
  argv: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<AgentRun> {
  const root = process.getuid?.() === 0;
  const cmd = root ? "setpriv" : (argv[0] as string);
  const args = root
    ? ["--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv]
    : argv.slice(1);
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: "pipe" });
    c.stdin.end();
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    c.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => c.kill("SIGKILL"), options.timeoutMs);
    c.on("error", reject);
    c.on("exit", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** A directory the agent's user owns (`nobody` when the tests run as root). */
export function agentDir(path: string): string {
  mkdirSync(path, { recursive: true });
  if (process.getuid?.() === 0) chownSync(path, 65534, 65534);
  return path;
}

const require = createRequire(import.meta.url);

const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/** Under root: whether `nobody` can read (and traverse to) `path`. */
function nobodyCanRead(path: string): boolean {
  // Forces the copy, to check that path on a machine where the checkout is readable.
  if (process.env["BOTTLEKIT_E2E_COPY_AGENTS"] === "1") return false;
  if (process.getuid?.() !== 0) return true;
  return spawnSync("setpriv", [...NOBODY, "test", "-r", path]).status === 0;
}

/**
 * A place `nobody` can read, for agent binaries when the checkout is not (e.g. under /root in
 * CI): created once per machine and reused while the copy has the same size.
 */
function sharedCopy(name: string, copy: (dir: string) => void, probe: string): string {
  const root = join(tmpdir(), "bottlekit-e2e-agents");
  const dir = join(root, name);
  if (!existsSync(join(dir, probe))) {
    mkdirSync(root, { recursive: true });
    chmodSync(root, 0o755);
    const tmp = `${dir}.${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    copy(tmp);
    spawnSync("chmod", ["-R", "a+rX", tmp]);
    try {
      renameSync(tmp, dir);
    } catch (error) {
      // Another test file made the same copy first: use it.
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, probe))) throw error;
    }
  }
  return dir;
}

/** The pinned Claude Code's native binary (the wrapper's postinstall is not needed to run it). */
export function claudeBinary(): string {
  const pkg = dirname(require.resolve("@anthropic-ai/claude-code/package.json"));
  const native = `@anthropic-ai/claude-code-${process.platform}-${process.arch}`;
  const fromPkg = createRequire(join(pkg, "package.json"));
  const bin = join(dirname(fromPkg.resolve(`${native}/package.json`)), "claude");
  if (nobodyCanRead(bin)) return bin;
  const version = (fromPkg(`${native}/package.json`) as { version: string }).version;
  const dir = sharedCopy(
    `claude-${version}-${statSync(bin).size}`,
    (d) => copyFileSync(bin, join(d, "claude")),
    "claude",
  );
  return join(dir, "claude");
}

/** The pinned Codex CLI's launcher (`codex.js`, run with this Node). */
export function codexLauncher(): string {
  const pkgJson = require.resolve("@openai/codex/package.json");
  const launcher = join(dirname(pkgJson), "bin", "codex.js");
  if (nobodyCanRead(launcher)) return launcher;
  // codex.js falls back to `<its dir>/../vendor` when the platform package is not resolvable.
  const fromPkg = createRequire(pkgJson);
  const platformPkg = fromPkg.resolve(
    `@openai/codex-${process.platform}-${process.arch}/package.json`,
  );
  const version = (fromPkg("@openai/codex/package.json") as { version: string }).version;
  const dir = sharedCopy(
    `codex-${version}`,
    (d) => {
      mkdirSync(join(d, "bin"));
      copyFileSync(launcher, join(d, "bin", "codex.js"));
      copyFileSync(pkgJson, join(d, "package.json"));
      cpSync(join(dirname(platformPkg), "vendor"), join(d, "vendor"), { recursive: true });
    },
    "bin/codex.js",
  );
  return join(dir, "bin", "codex.js");
}
