/**
 * Runs one tool process: argv only (no shell of ours), its own process group, a timeout that
 * kills the whole group, and a cap on the bytes kept from stdout and stderr (the rest is
 * counted and dropped). When the main process exits, whatever it left behind in its group is
 * killed too, so no tool outlives its call.
 */
import { spawn } from "node:child_process";

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  stdin: string;
  timeoutMs: number;
  /** Bytes kept per stream. */
  capBytes: number;
  /** Grace between SIGTERM and SIGKILL on a timeout. */
  graceMs?: number;
}

export interface SpawnResult {
  /** Exit status, or -1 when killed by a signal or the timeout. */
  exit: number;
  signal: string | undefined;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
  durationMs: number;
  /** Process id of the main process (for tests and the audit). */
  pid: number | undefined;
  /** Set when the program could not be started (ENOENT, EACCES). */
  spawnError?: string;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

export function runProcess(argv: readonly string[], o: SpawnOptions): Promise<SpawnResult> {
  const started = performance.now();
  return new Promise((resolvePromise) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd as string, args, {
      cwd: o.cwd,
      env: o.env,
      detached: true, // own process group: the timeout kills it whole
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (child.pid !== undefined) live.add(child.pid);
    const keep = { out: [] as Buffer[], err: [] as Buffer[] };
    let outBytes = 0;
    let errBytes = 0;
    let timedOut = false;
    let settled = false;
    let spawnError: string | undefined;
    const take = (into: Buffer[], kept: number, chunk: Buffer): void => {
      if (kept < o.capBytes) into.push(chunk.subarray(0, o.capBytes - kept));
    };
    child.stdout.on("data", (c: Buffer) => {
      take(keep.out, outBytes, c);
      outBytes += c.length;
    });
    child.stderr.on("data", (c: Buffer) => {
      take(keep.err, errBytes, c);
      errBytes += c.length;
    });
    child.stdin.on("error", () => undefined); // a tool that does not read its input
    child.stdin.end(o.stdin);
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), o.graceMs ?? 200);
    }, o.timeoutMs);
    child.on("error", (e) => {
      spawnError = (e as NodeJS.ErrnoException).code ?? e.message;
    });
    // 'exit': the main process is gone; sweep its group so pipes held by leftovers close.
    child.on("exit", () => killGroup(child.pid, "SIGKILL"));
    child.on("close", (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      killGroup(child.pid, "SIGKILL");
      if (child.pid !== undefined) live.delete(child.pid);
      const result: SpawnResult = {
        exit: code ?? -1,
        signal: signal ?? undefined,
        timedOut,
        stdout: Buffer.concat(keep.out).toString("utf8"),
        stderr: Buffer.concat(keep.err).toString("utf8"),
        stdoutBytes: outBytes,
        stderrBytes: errBytes,
        truncated: outBytes > o.capBytes || errBytes > o.capBytes,
        durationMs: performance.now() - started,
        pid: child.pid,
      };
      if (spawnError !== undefined) {
        result.spawnError = spawnError;
        result.exit = -1;
      }
      resolvePromise(result);
    });
  });
}

/** Process groups of tools still running (killed on SIGINT/SIGTERM of agentcli). */
const live = new Set<number>();

/** Kills every tool process group still running. */
export function killAllGroups(): void {
  for (const pid of live) killGroup(pid, "SIGKILL");
  live.clear();
}
