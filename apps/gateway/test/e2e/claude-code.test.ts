/**
 * End to end: the real Claude Code CLI (pinned devDependency) against `bottle-gateway up` and a
 * local upstream speaking Anthropic's wire format (SSE). Claude Code never runs as root: under
 * root (CI) it runs as `nobody`.
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
import { agentDir, claudeBinary, type RunningBin, runAgent, startBin } from "./helpers.ts";

const KEY = "sk-ant-api03-E2EclaudeKEY0123456789abcdefABCDEF0123456789-xyzAA";
const MODEL = "anthropic/claude-sonnet-4-5";

let up: FakeUpstream;
let home: TempHome;
let traffic: string[];

beforeAll(async () => {
  up = await createFakeUpstream({ requireKey: KEY });
});
afterAll(() => up.close());

/** A gateway home, its config (optionally with a token budget) and a running bin. */
async function gateway(budget?: number): Promise<{ gw: RunningBin; url: string; db: string }> {
  home = await createTempHome("bottlekit-e2e-claude-");
  chmodSync(home.dir, 0o755);
  const lines = [
    "model_providers:",
    "  - model: anthropic/*",
    `    base_url: ${up.url}/v1`,
    "    access_key: $ANTHROPIC_API_KEY",
  ];
  if (budget !== undefined) {
    lines.push(
      "budgets:",
      `  - { scope: bottle, key: default, provider: anthropic, tokens: ${budget} }`,
    );
  }
  const config = await home.write("gw.yml", `${lines.join("\n")}\n`);
  const gw = startBin(config, {
    PATH: process.env["PATH"],
    BOTTLEKIT_HOME: home.dir,
    ANTHROPIC_API_KEY: KEY,
  });
  return { gw, url: await gw.url, db: join(home.dir, "bottlekit.db") };
}

let running: RunningBin | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
  // The upstream's traffic of the case, for whoever reads a failure.
  traffic = up.requests.map(
    (r) =>
      `${r.method} ${r.path} ${r.rawBody.length}B usage=${JSON.stringify(r.usage)} aborted=${r.aborted}`,
  );
  if (traffic.length > 0) process.stderr.write(`upstream traffic:\n  ${traffic.join("\n  ")}\n`);
  up.reset();
  await home.cleanup();
});

function claude(prompt: string, url: string, extra: string[] = []) {
  const hd = agentDir(join(home.dir, "agent-home"));
  const project = agentDir(join(home.dir, "project"));
  return {
    project,
    run: () =>
      runAgent(
        [
          claudeBinary(),
          "-p",
          prompt,
          "--output-format",
          "json",
          "--model",
          MODEL,
          "--no-session-persistence",
          ...extra,
        ],
        {
          cwd: project,
          env: {
            PATH: process.env["PATH"],
            HOME: hd,
            ANTHROPIC_BASE_URL: url,
            // Not a provider key: on loopback the gateway takes any non-provider credential.
            ANTHROPIC_API_KEY: "bottlekit-local",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
            DISABLE_AUTOUPDATER: "1",
          },
          timeoutMs: 60_000,
        },
      ),
  };
}

/** The gateway's ledger, read without reclaiming anything. */
async function ledger(db: string) {
  const store = await openStore(`sqlite:${db}`, { home: home.dir, reclaimOnOpen: false });
  try {
    return await store.events();
  } finally {
    await store.close();
  }
}

/** The upstream's reported usage, per model call. */
function upstreamTokens(): number[] {
  return up.requests
    .filter((r) => r.api === "anthropic-messages" && r.usage !== undefined)
    .map((r) => (r.usage?.input ?? 0) + (r.usage?.output ?? 0));
}

describe("Claude Code through bottle-gateway up", () => {
  it("a two-turn run with a tool under a 50k budget: the answer reaches the user; the ledger equals the upstream's usage (upstream ends 1 ms after message_stop)", async () => {
    const { gw, url, db } = await gateway(50_000);
    running = gw;
    const c = claude("What does note.txt say?", url, ["--allowedTools", "Read"]);
    writeFileSync(join(c.project, "note.txt"), "the password is banana-split\n");
    up.enqueue(
      {
        toolCalls: [
          { name: "Read", arguments: JSON.stringify({ file_path: join(c.project, "note.txt") }) },
        ],
        endDelayMs: 1,
      },
      { text: "The note says: banana-split.", endDelayMs: 1 },
    );
    const r = await c.run();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { result: string; is_error: boolean; num_turns: number };
    expect(out.is_error).toBe(false);
    expect(out.result).toBe("The note says: banana-split.");
    const calls = up.requests.filter((q) => q.api === "anthropic-messages");
    expect(calls.length).toBe(2);
    // Turn two carried the tool's result: the tool really ran.
    expect(calls[1]?.rawBody).toContain("tool_result");
    expect(calls[1]?.rawBody).toContain("banana-split");
    // Claude Code asks for max_tokens far above what 50k leaves: the gateway clamped it.
    const caps = calls.map((q) => (q.body as { max_tokens: number }).max_tokens);
    expect(caps[1]).toBeLessThan(caps[0] as number);
    await gw.stop();
    const events = await ledger(db);
    expect(events.map((e) => e.usageMissing)).toEqual([false, false]);
    expect(events.map((e) => e.tokens).sort()).toEqual(upstreamTokens().sort());
  });

  it("a plain answer, upstream ending 50 ms after message_stop: exact usage", async () => {
    const { gw, url, db } = await gateway();
    running = gw;
    up.enqueue({ text: "Hi there.", endDelayMs: 50 });
    const r = await claude("say hi", url).run();
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { result: string }).result).toBe("Hi there.");
    await gw.stop();
    const events = await ledger(db);
    expect(events.length).toBe(1);
    expect(events[0]?.usageMissing).toBe(false);
    expect(events.map((e) => e.tokens)).toEqual(upstreamTokens());
  });

  it("a budget refusal reaches the user within 10 s with the gateway's reason, after one request (no retries)", async () => {
    const { gw, url, db } = await gateway(100);
    running = gw;
    const store = await openStore(`sqlite:${db}`, { home: home.dir, reclaimOnOpen: false });
    await store.cutOff("default", { by: "test", reason: "e2e" });
    await store.close();
    const c = claude("say hi", url);
    const r = await runAgent(
      [claudeBinary(), "-p", "say hi", "--output-format", "json", "--model", MODEL],
      {
        cwd: c.project,
        env: {
          PATH: process.env["PATH"],
          HOME: join(home.dir, "agent-home"),
          ANTHROPIC_BASE_URL: url,
          ANTHROPIC_API_KEY: "bottlekit-local",
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_AUTOUPDATER: "1",
        },
        // The bound the user waits: killed (and so failed) after 10 s.
        timeoutMs: 10_000,
      },
    );
    expect(r.signal, "Claude Code was still retrying after 10 s").toBeNull();
    expect(`${r.stdout}${r.stderr}`).toContain("is cut off");
    expect(up.requests.filter((q) => q.api === "anthropic-messages").length).toBe(0);
    expect(gw.logs().filter((l) => l["event"] === "budget.refused").length).toBe(1);
  });
});
