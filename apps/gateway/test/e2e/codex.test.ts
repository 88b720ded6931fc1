/**
 * End to end: the real Codex CLI (pinned devDependency, `codex exec`, Responses API) against
 * `bottle-gateway up` and a local upstream speaking OpenAI's Responses wire format (SSE). Codex
 * 0.16x/0.17x ignores OPENAI_BASE_URL: a `model_providers` entry in $CODEX_HOME/config.toml
 * points it at the gateway, and it sends `Authorization` only from CODEX_API_KEY. Never as
 * root: under root (CI) it runs as `nobody`.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentDir, codexLauncher, type RunningBin, runAgent, startBin } from "./helpers.ts";

const KEY = "sk-proj-E2EcodexKEY0123456789abcdefABCDEF0123456789ab";

let up: FakeUpstream;
let home: TempHome;
let running: RunningBin | undefined;

beforeAll(async () => {
  up = await createFakeUpstream({ requireKey: KEY });
});
afterAll(() => up.close());
afterEach(async () => {
  await running?.stop();
  running = undefined;
  const traffic = up.requests.map(
    (r) =>
      `${r.method} ${r.path} ${r.rawBody.length}B usage=${JSON.stringify(r.usage)} aborted=${r.aborted}`,
  );
  if (traffic.length > 0) process.stderr.write(`upstream traffic:\n  ${traffic.join("\n  ")}\n`);
  up.reset();
  await home.cleanup();
});

async function gateway(budget?: number): Promise<{ url: string; db: string }> {
  home = await createTempHome("bottlekit-e2e-codex-");
  chmodSync(home.dir, 0o755);
  const lines = [
    "model_providers:",
    "  - model: openai/*",
    `    base_url: ${up.url}/v1`,
    "    access_key: $OPENAI_API_KEY",
  ];
  if (budget !== undefined) {
    lines.push(
      "budgets:",
      `  - { scope: bottle, key: default, provider: openai, tokens: ${budget} }`,
    );
  }
  const config = await home.write("gw.yml", `${lines.join("\n")}\n`);
  running = startBin(config, {
    PATH: process.env["PATH"],
    BOTTLEKIT_HOME: home.dir,
    OPENAI_API_KEY: KEY,
  });
  return { url: await running.url, db: join(home.dir, "bottlekit.db") };
}

function codex(prompt: string, url: string, timeoutMs: number, providerExtra: string[] = []) {
  const codexHome = agentDir(join(home.dir, "codex-home"));
  const workdir = agentDir(join(home.dir, "work"));
  const config = join(codexHome, "config.toml");
  writeFileSync(
    config,
    [
      'model = "openai/gpt-5-codex"',
      'model_provider = "bottlekit"',
      "[model_providers.bottlekit]",
      'name = "bottlekit gateway"',
      `base_url = "${url}/v1"`,
      'env_key = "CODEX_API_KEY"',
      'wire_api = "responses"',
      ...providerExtra,
      "",
    ].join("\n"),
  );
  chmodSync(config, 0o644);
  return runAgent([process.execPath, codexLauncher(), "exec", "--skip-git-repo-check", prompt], {
    cwd: workdir,
    env: {
      PATH: process.env["PATH"],
      HOME: workdir,
      CODEX_HOME: codexHome,
      // Not a provider key: on loopback the gateway takes any non-provider credential.
      CODEX_API_KEY: "bottlekit-local",
    },
    timeoutMs,
  });
}

async function ledger(db: string) {
  const store = await openStore(`sqlite:${db}`, { home: home.dir, reclaimOnOpen: false });
  try {
    return await store.events();
  } finally {
    await store.close();
  }
}

describe("Codex through bottle-gateway up", () => {
  it("codex exec: the answer reaches the user; the ledger equals the upstream's usage with the upstream ending 1 and 50 ms after response.completed", async () => {
    const { url, db } = await gateway();
    for (const endDelayMs of [1, 50]) {
      up.enqueue({ text: `The answer is ${endDelayMs}.`, endDelayMs });
      const r = await codex("what is the answer?", url, 60_000);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`The answer is ${endDelayMs}.`);
    }
    await running?.stop();
    const events = await ledger(db);
    const reported = up.requests
      .filter((q) => q.api === "openai-responses")
      .map((q) => (q.usage?.input ?? 0) + (q.usage?.output ?? 0));
    expect(reported.length).toBe(2);
    expect(events.map((e) => e.usageMissing)).toEqual([false, false]);
    expect(events.map((e) => e.tokens)).toEqual(reported);
  });

  it("a budget refusal reaches the user within 10 s with the gateway's reason", async () => {
    const { url, db } = await gateway(100);
    const store = await openStore(`sqlite:${db}`, { home: home.dir, reclaimOnOpen: false });
    await store.cutOff("default", { by: "test", reason: "e2e" });
    await store.close();
    // The bound the user waits: killed (and so failed) after 10 s.
    const r = await codex("say hi", url, 10_000);
    expect(r.signal, "Codex was still retrying after 10 s").toBeNull();
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain("is cut off");
    expect(up.requests.length).toBe(0);
    // Sent once: Codex did not retry.
    expect(running?.logs().filter((l) => l["event"] === "budget.refused").length).toBe(1);
  });

  it("Codex with WebSockets on (as for OpenAI's own endpoint) is refused the upgrade with 426 and falls back to HTTP at once: the answer reaches the user, the ledger is exact", async () => {
    const { url, db } = await gateway();
    up.enqueue({ text: "Fell back to HTTP." });
    const r = await codex("which transport?", url, 60_000, ["supports_websockets = true"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("Fell back to HTTP.");
    const logs = running?.logs() ?? [];
    // Codex asked for the WebSocket first, and was refused before any handshake ...
    const refused = logs.filter((l) => l["event"] === "websocket.refused");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]?.["path"]).toBe("/v1/responses");
    // ... without retrying it (one upgrade per codex run), and did not tell the user it failed
    expect(refused.length).toBe(1);
    expect(r.stderr).not.toMatch(/Reconnecting/i);
    await running?.stop();
    const events = await ledger(db);
    const reported = up.requests
      .filter((q) => q.api === "openai-responses")
      .map((q) => (q.usage?.input ?? 0) + (q.usage?.output ?? 0));
    expect(reported.length).toBe(1);
    expect(events.map((e) => e.tokens)).toEqual(reported);
  });
});
