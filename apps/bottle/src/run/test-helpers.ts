import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { inspectHost } from "@bottlekit/sandbox";

const here = path.dirname(new URL(import.meta.url).pathname);
const tsx = createRequire(import.meta.url).resolve("tsx");

/** Starts `bottle …` from source as a real process. */
export function spawnBottle(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    process.execPath,
    ["--conditions=@bottlekit/source", "--import", tsx, path.join(here, "dev-bin.ts"), ...args],
    {
      env: { PATH: process.env["PATH"], ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
}

export interface Finished {
  code: number;
  out: string;
  err: string;
}

export function collect(child: ChildProcess): {
  done: Promise<Finished>;
  out(): string;
  err(): string;
} {
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString("utf8");
  });
  const done = new Promise<Finished>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, err })),
  );
  return { done, out: () => out, err: () => err };
}

export async function runBottle(args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return collect(spawnBottle(args, env)).done;
}

/** A project directory (under /var/tmp, visible in the sandbox) the agent's account can write. */
export function agentProject(): string {
  const dir = fs.mkdtempSync("/var/tmp/bottle-run-test-");
  const host = inspectHost({});
  if (host.account.drop) fs.chownSync(dir, host.account.uid, host.account.gid);
  return dir;
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false,
  tries = 1200,
  everyMs = 50,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
