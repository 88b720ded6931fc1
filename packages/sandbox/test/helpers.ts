import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  type HostFacts,
  inspectHost,
  type SandboxSpec,
  type StartOptions,
  startSandbox,
} from "../src/index.ts";

/** Host directories for a test: under /var/tmp, which the sandbox shows read-only (/tmp is a tmpfs inside). */
export function hostDir(prefix: string): string {
  return fs.mkdtempSync(path.join("/var/tmp", `bottle-test-${prefix}-`));
}

/** A project directory the agent's account can write (chowned to it when the tests run as root). */
export function projectDir(): string {
  const dir = hostDir("project");
  const host = inspectHost({});
  if (host.account.drop) fs.chownSync(dir, host.account.uid, host.account.gid);
  return dir;
}

/**
 * A minimal stand-in for the egress proxy's unix socket: answers every request with `status`
 * (403 refuses, as the real proxy does for an undeclared host).
 */
export async function proxySocket(
  status = 403,
): Promise<{ socketPath: string; requests: string[]; close(): void }> {
  const dir = hostDir("proxy");
  const socketPath = path.join(dir, "proxy.sock");
  const requests: string[] = [];
  const server = net.createServer((c) => {
    c.once("data", (d) => {
      requests.push(d.toString("utf8").split("\r\n")[0] ?? "");
      c.end(`HTTP/1.1 ${status} X\r\ncontent-length: 0\r\n\r\n`);
    });
    c.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    requests,
    close: () => {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  probeOk: boolean;
}

/** Runs `spec` in a sandbox to completion and collects its output. */
export async function runIn(spec: SandboxSpec, options: StartOptions = {}): Promise<RunResult> {
  const sb = startSandbox(spec, { ...options, stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  sb.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
  });
  sb.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const [exit, probe] = await Promise.all([sb.exited, sb.probe]);
  return { code: exit.code, stdout, stderr, probeOk: probe.ok };
}

export const isRoot = (): boolean => os.userInfo().uid === 0;

/**
 * The two programs that can run stage 1: Perl (the default where the host has a system Perl) and
 * Node (the fallback). Suites that exercise the launcher run once with each; a host without Perl
 * runs the Perl suites under Node, as bottle would.
 */
export const LAUNCHERS = ["perl", "node"] as const;

/** Host facts whose stage 1 runs under `launcher`. */
export function launcherHost(launcher: (typeof LAUNCHERS)[number]): HostFacts {
  return inspectHost({}, launcher === "node" ? { perl: null } : {});
}
