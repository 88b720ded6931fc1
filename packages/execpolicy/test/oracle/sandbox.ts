/**
 * Runs bash scripts for real and records every program they execute.
 *
 * One batch = one throwaway sandbox: bubblewrap with every namespace unshared (no network),
 * a read-only view of the system, a private /tmp, and (when started as root) an unprivileged
 * user through setpriv. Inside, `strace -f -e trace=execve,clone…` follows one bash driver that
 * runs each script in its own subshell and its own empty directory. Programs a policy forbids
 * or does not list are recording stubs (symlinks to `true`) placed first on PATH: strace records
 * their execve like any other, and nothing they stand for happens.
 *
 * Every recorded execve is attributed to its script through the process tree: the driver's k-th
 * fork is script k's subshell, and every later process descends from one of them.
 */
import { spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Programs replaced by stubs: everything the oracle policies forbid or do not list. */
export const STUBS = [
  "curl",
  "wget",
  "rm",
  "sudo",
  "doas",
  "git",
  "npm",
  "make",
  "uploader",
  "python3",
  "evil",
  "rg",
  "nc",
  "ssh",
];

export interface Exec {
  path: string;
  argv: string[];
}

export interface BatchResult {
  /** Successful execve calls per script, in order. */
  execs: Exec[][];
  /** Successful execve calls that could not be attributed to a script (should be none). */
  unattributed: Exec[];
  /** The sandbox's exit code and stderr, for diagnosis. */
  exitCode: number | null;
  stderr: string;
}

const INSIDE = "/tmp/orc";
const UNPRIVILEGED = 65534;

/** Everything the oracle needs installed; a missing tool is an error, never a skip. */
export const REQUIRED_TOOLS = ["/usr/bin/bwrap", "/usr/bin/strace", "/bin/bash", "/bin/true"];

function pad(i: number): string {
  return String(i).padStart(6, "0");
}

/** Decodes a string strace printed with -xx ("\x6c\x73"). */
function unhex(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && s[i + 1] === "x") {
      bytes.push(Number.parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString("latin1");
}

const STRING = /"((?:\\x[0-9a-f]{2})*)"/g;

function parseExecve(args: string): Exec | undefined {
  const m = /^"((?:\\x[0-9a-f]{2})*)", \[(.*?)\](?:\.\.\.)?, /.exec(args);
  if (!m) return undefined;
  const argv = [...(m[2] as string).matchAll(STRING)].map((x) => unhex(x[1] as string));
  return { path: unhex(m[1] as string), argv };
}

/** Parses strace -f output into per-script execs (see the module comment). */
export function attribute(
  trace: string,
  scripts: number,
): Omit<BatchResult, "exitCode" | "stderr"> {
  const parent = new Map<number, number>();
  const execsByPid: [number, Exec][] = [];
  const pending = new Map<number, string>();
  let driver: number | undefined;
  const roots: number[] = [];
  for (const raw of trace.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const pid = Number(m[1]);
    let text = m[2] as string;
    if (text.endsWith("<unfinished ...>")) {
      pending.set(pid, text.slice(0, -"<unfinished ...>".length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(text);
    if (resumed) {
      text = (pending.get(pid) ?? "") + (resumed[1] as string);
      pending.delete(pid);
    }
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(text);
    if (!call) continue;
    const [, name, args, ret] = call as unknown as [string, string, string, string];
    const result = Number(ret);
    if (name === "execve") {
      if (result !== 0) continue;
      const exec = parseExecve(args);
      if (!exec) continue;
      if (driver === undefined) {
        driver = pid;
        continue;
      }
      execsByPid.push([pid, exec]);
    } else if (result > 0 && /^(clone|clone3|fork|vfork)$/.test(name)) {
      parent.set(result, pid);
      if (pid === driver) roots.push(result);
    }
  }
  const rootIndex = new Map(roots.map((r, i) => [r, i]));
  const execs: Exec[][] = Array.from({ length: scripts }, () => []);
  const unattributed: Exec[] = [];
  for (const [pid, exec] of execsByPid) {
    let p: number | undefined = pid;
    let hops = 0;
    while (p !== undefined && !rootIndex.has(p) && hops++ < 10_000) p = parent.get(p);
    const index = p === undefined ? undefined : rootIndex.get(p);
    if (index === undefined || index >= scripts) unattributed.push(exec);
    else (execs[index] as Exec[]).push(exec);
  }
  return { execs, unattributed };
}

/** Runs `scripts` in one sandbox; resolves when the sandbox has exited (or was killed at `timeoutMs`). */
export async function runBatch(
  scripts: readonly string[],
  timeoutMs = 300_000,
): Promise<BatchResult> {
  const host = mkdtempSync(join(tmpdir(), "execpolicy-oracle-"));
  try {
    mkdirSync(join(host, "stubs"));
    for (const s of STUBS) symlinkSync("/bin/true", join(host, "stubs", s));
    mkdirSync(join(host, "s"));
    mkdirSync(join(host, "w"));
    const lines = ["#!/bin/bash"];
    scripts.forEach((script, i) => {
      const id = pad(i);
      writeFileSync(join(host, "s", `${id}.sh`), `${script}\n`);
      const dir = join(host, "w", id);
      mkdirSync(join(dir, ".git"), { recursive: true });
      writeFileSync(join(dir, "f.txt"), "a\nb\n");
      // one fork of the driver per script: its subshell, in its own directory and HOME
      lines.push(
        `( cd ${INSIDE}/w/${id} && HOME=$PWD && ulimit -t 2 && . ${INSIDE}/s/${id}.sh ) </dev/null >/dev/null 2>&1`,
      );
    });
    // the driver's own status, not the last script's: non-zero means the sandbox itself failed
    lines.push("exit 0");
    writeFileSync(join(host, "driver.sh"), `${lines.join("\n")}\n`);
    const root = process.getuid?.() === 0;
    if (root) chownTree(host, UNPRIVILEGED);
    else chmodSync(host, 0o755);
    const sandbox = [
      "/usr/bin/bwrap",
      "--unshare-all",
      "--die-with-parent",
      "--new-session",
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/tmp",
      "--bind",
      host,
      INSIDE,
      "--chdir",
      INSIDE,
      "--clearenv",
      "--setenv",
      "PATH",
      `${INSIDE}/stubs:/usr/local/bin:/usr/bin:/bin`,
      "--setenv",
      "HOME",
      INSIDE,
      "--setenv",
      "LANG",
      "C",
      // generated functions may call themselves (`ls() { ls; }; ls`): bounded, not a hang
      "--setenv",
      "FUNCNEST",
      "16",
      "/usr/bin/strace",
      "-f",
      "--seccomp-bpf",
      "-qq",
      "-xx",
      "-s",
      "4096",
      "-e",
      "trace=execve,clone,clone3,fork,vfork",
      "-e",
      "signal=none",
      "-o",
      `${INSIDE}/trace`,
      "/bin/bash",
      "--norc",
      "--noprofile",
      `${INSIDE}/driver.sh`,
    ];
    const argv = root
      ? [
          "/usr/bin/setpriv",
          `--reuid=${UNPRIVILEGED}`,
          `--regid=${UNPRIVILEGED}`,
          "--clear-groups",
          ...sandbox,
        ]
      : sandbox;
    const { code, stderr } = await run(argv, timeoutMs);
    let trace = "";
    try {
      trace = readFileSync(join(host, "trace"), "latin1");
    } catch {
      // no trace: reported through exitCode/stderr
    }
    return { ...attribute(trace, scripts.length), exitCode: code, stderr };
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
}

function chownTree(dir: string, uid: number): void {
  chownSync(dir, uid, uid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) chownTree(p, uid);
    else chownSync(p, uid, uid);
  }
}

function run(argv: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < 65_536) stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
