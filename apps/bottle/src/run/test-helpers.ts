import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { BottleCa } from "@bottlekit/egress-proxy";
import { inspectHost } from "@bottlekit/sandbox";
import { createFakeUpstream, type FakeUpstream } from "@bottlekit/test-utils";

const here = path.dirname(new URL(import.meta.url).pathname);
const tsx = createRequire(import.meta.url).resolve("tsx");

/**
 * Starts `bottle …` as a real process: from source, or (`built`) as the package's bin runs it,
 * from dist/ (for `run`: its two bundled files with the code cache; turbo builds before tests).
 */
export function spawnBottle(
  args: string[],
  env: NodeJS.ProcessEnv,
  from: "source" | "built" = "source",
): ChildProcess {
  const entry =
    from === "built"
      ? [path.join(here, "..", "..", "bin", "bottle.js")]
      : ["--conditions=@bottlekit/source", "--import", tsx, path.join(here, "dev-bin.ts")];
  return spawn(process.execPath, [...entry, ...args], {
    env: { PATH: process.env["PATH"], ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
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

export async function runBottle(
  args: string[],
  env: NodeJS.ProcessEnv,
  from: "source" | "built" = "source",
): Promise<Finished> {
  return collect(spawnBottle(args, env, from)).done;
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

/**
 * A local stand-in for a provider's API host: the fake upstream (which requires `key`) behind a
 * TLS server presenting `hostname` with a certificate from a throwaway CA. Give the proxy
 * `resolve` and `caPem` (its test-only host resolution and upstream CA options).
 */
export interface ProviderStandIn {
  fake: FakeUpstream;
  caPem: string;
  resolve(host: string, port: number): { host: string; port: number };
  close(): Promise<void>;
}

export async function providerStandIn(hostname: string, key: string): Promise<ProviderStandIn> {
  const fake = await createFakeUpstream({ requireKey: key });
  const caDir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-e2e-ca-"));
  const ca = await BottleCa.open(caDir, `${hostname}-standin`);
  const ctx = await ca.contextFor(hostname);
  const front = https.createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (req, res) => {
    const up = http.request(
      {
        host: "127.0.0.1",
        port: fake.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", () => r()));
  const port = (front.address() as AddressInfo).port;
  return {
    fake,
    caPem: ca.certPem,
    resolve: (h, p) => (h === hostname ? { host: "127.0.0.1", port } : { host: h, port: p }),
    async close() {
      front.close();
      await fake.close();
      fs.rmSync(caDir, { recursive: true, force: true });
    },
  };
}
