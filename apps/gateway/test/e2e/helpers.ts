import { type ChildProcess, spawn } from "node:child_process";
import { chownSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
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

/** The pinned Claude Code's native binary (the wrapper's postinstall is not needed to run it). */
export function claudeBinary(): string {
  const pkg = dirname(require.resolve("@anthropic-ai/claude-code/package.json"));
  const native = `@anthropic-ai/claude-code-${process.platform}-${process.arch}`;
  const fromPkg = createRequire(join(pkg, "package.json"));
  return join(dirname(fromPkg.resolve(`${native}/package.json`)), "claude");
}

/** The pinned Codex CLI's launcher (`codex.js`, run with this Node). */
export function codexLauncher(): string {
  return join(dirname(require.resolve("@openai/codex/package.json")), "bin", "codex.js");
}
