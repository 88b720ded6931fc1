/**
 * The real Claude Code CLI (pinned devDependency) through the proxy: HTTPS_PROXY and the bottle
 * CA in its environment, only a placeholder for its key; api.anthropic.com is a local TLS front
 * relaying to @bottlekit/test-utils' fake Anthropic upstream, which requires the real key. Claude
 * Code never runs as root: under root (CI) it runs as `nobody`.
 */
import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createFakeUpstream, type FakeUpstream } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTlsFront, type TlsFront } from "../test/upstream.ts";
import { type AuditEvent, createProxyHost, type ProxyHost, type RegisterResult } from "./index.ts";

const KEY = "sk-ant-api03-ProxyE2EkeyHeldByTheHost0123456789abcdefABCDEF-xyzAA";

function claudeNative(): string {
  const require = createRequire(import.meta.url);
  const wrapper = dirname(require.resolve("@anthropic-ai/claude-code/package.json"));
  const native = `@anthropic-ai/claude-code-${process.platform}-${process.arch}`;
  return join(
    dirname(createRequire(join(wrapper, "package.json")).resolve(`${native}/package.json`)),
    "claude",
  );
}

/** Runs argv as the current user, or as nobody when that user is root. */
function runUnprivileged(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const root = process.getuid?.() === 0;
  const [cmd, ...args] = root
    ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...argv]
    : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function ownedByAgent(path: string): string {
  mkdirSync(path, { recursive: true });
  if (process.getuid?.() === 0) chownSync(path, 65534, 65534);
  return path;
}

let fake: FakeUpstream;
let front: TlsFront;
let home: string;
let host: ProxyHost;
let session: RegisterResult;
const events: AuditEvent[] = [];

beforeAll(async () => {
  fake = await createFakeUpstream({
    requireKey: KEY,
    defaultReply: { text: "Hi from behind the proxy." },
  });
  front = await startTlsFront(["api.anthropic.com"], fake.port);
  home = mkdtempSync(join(tmpdir(), "bk-agent-"));
  chmodSync(home, 0o755);
  host = createProxyHost({
    home,
    onAudit: (e) => events.push(e),
    credentialSource: (spec) => (spec.hostEnv === "BK_ANTHROPIC" ? KEY : undefined),
    resolve: () => ({ host: "127.0.0.1", port: front.port }),
    upstreamCa: front.caPem,
  });
  session = await host.register({
    bottle: "agent-e2e",
    agent: "claude",
    tcp: true,
    credentials: [
      {
        name: "ANTHROPIC_API_KEY",
        hostEnv: "BK_ANTHROPIC",
        hosts: ["api.anthropic.com"],
        shaped: true,
      },
    ],
    routes: [
      {
        host: "api.anthropic.com",
        matches: [{ paths: [{ type: "prefix", value: "/v1/messages" }], methods: ["POST"] }],
        dlp: { outbound_on_match: "block" },
      },
    ],
  });
});

afterAll(async () => {
  await host?.close();
  await front?.close();
  await fake?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("Claude Code through the proxy", () => {
  it("calls its provider with the real key injected upstream and only a placeholder in its env", async () => {
    const tcp = session.tcp as NonNullable<RegisterResult["tcp"]>;
    const proxy = `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`;
    const project = ownedByAgent(join(home, "project"));
    const agentHome = ownedByAgent(join(home, "agent-home"));
    expect(session.env.ANTHROPIC_API_KEY).toMatch(/^sk-ant-api03-/);
    expect(session.env.ANTHROPIC_API_KEY).not.toBe(KEY);
    const r = await runUnprivileged(
      [claudeNative(), "-p", "say hi", "--output-format", "json"],
      project,
      {
        PATH: process.env.PATH,
        HOME: agentHome,
        ...session.env,
        HTTPS_PROXY: proxy,
        https_proxy: proxy,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
        DISABLE_AUTOUPDATER: "1",
      },
      120_000,
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect((JSON.parse(r.stdout) as { result: string }).result).toBe("Hi from behind the proxy.");
    const calls = fake.requests.filter((q) => q.api === "anthropic-messages");
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const q of fake.requests) {
      expect(q.headers["x-api-key"]).toBe(KEY);
      expect(q.rawBody).not.toContain(session.env.ANTHROPIC_API_KEY);
    }
    const allowed = events.filter((e) => e.host === "api.anthropic.com" && e.decision === "allow");
    expect(allowed.length).toBe(fake.requests.length);
    expect(allowed.every((e) => e.credentials?.includes("ANTHROPIC_API_KEY"))).toBe(true);
    expect(JSON.stringify(events)).not.toContain(KEY);
  }, 180_000);
});
