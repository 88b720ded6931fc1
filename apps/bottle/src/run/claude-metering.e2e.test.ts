import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore, type UsageEvent } from "@bottlekit/budget-store";
import { startGateway } from "@bottlekit/gateway";
import {
  createFakeUpstream,
  type FakeUpstream,
  type RecordedRequest,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { homeWith, md } from "../../test/helpers.ts";
import { readAudit } from "./sessions.ts";
import { agentProject, collect, runBottle, spawnBottle, waitFor } from "./test-helpers.ts";

/**
 * The real Claude Code (pinned devDependency) under `bottle run` with no controller running:
 * bottle run starts the gateway with its proxy door in-process, so Claude Code's calls to
 * https://api.anthropic.com (through the sandbox's only way out, the egress proxy, trusting the
 * bottle CA) run the gateway's pipeline: metered into the home's store against the bottle's
 * budgets, the real key injected. The embedded gateway's config (BOTTLEKIT_GATEWAY_CONFIG) sends
 * the anthropic provider to a local server standing in for the Anthropic API.
 */
const REAL_KEY = `sk-ant-api03-${"M".repeat(40)}-realkey`;
const claudeBin = path.join(
  path.dirname(new URL(import.meta.url).pathname),
  "..",
  "..",
  "node_modules",
  "@anthropic-ai",
  "claude-code",
);

function platformBinary(): string {
  // The package's postinstall (not run under pnpm without approval) would link this binary.
  const real = fs.realpathSync(claudeBin);
  return path.join(path.dirname(real), `claude-code-${process.platform}-${process.arch}`, "claude");
}

const BOTTLE = (cutoff: string) =>
  md(
    [
      "agent_provider:",
      "  name: claude",
      "  credentials: [ANTHROPIC_API_KEY]",
      `cutoff: ${cutoff}`,
      "exec_policy:",
      "  rules: [policy.rules]",
    ].join("\n"),
  );

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let gatewayConfig: string;

beforeAll(async () => {
  fake = await createFakeUpstream({ requireKey: REAL_KEY });
  home = await homeWith({
    "policy.rules":
      'prefix_rule(pattern = ["ls"], decision = "allow")\nprefix_rule(pattern = ["cat"], decision = "allow")\n',
    "bottles/metered.md": BOTTLE("cutoff"),
    "bottles/tight.md": BOTTLE("kill"),
    "agents/coder.md": md("bottle: metered"),
    "agents/spender.md": md("bottle: tight"),
    "bottles/capped.md": BOTTLE("cutoff"),
    "agents/capper.md": md("bottle: capped"),
  });
  gatewayConfig = path.join(home.dir, "gateway.yaml");
  fs.writeFileSync(
    gatewayConfig,
    [
      "model_providers:",
      "  - model: anthropic/*",
      `    base_url: ${fake.url}/v1`,
      "    access_key: $ANTHROPIC_API_KEY",
      "",
    ].join("\n"),
  );
  project = agentProject();
  fs.writeFileSync(path.join(project, "notes.txt"), "hello\n");
  fs.chownSync(path.join(project, "notes.txt"), fs.statSync(project).uid, fs.statSync(project).gid);
  // Reading this FIFO blocks until a writer opens it, and none ever does.
  execFileSync("mkfifo", ["-m", "0666", path.join(project, "gate.fifo")]);
}, 60_000);

afterAll(async () => {
  await fake?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

function claude(agent: string, prompt: string, extra: string[] = []) {
  return runBottle(claudeArgs(agent, prompt, extra), claudeEnv());
}

function claudeEnv(): NodeJS.ProcessEnv {
  return {
    ANTHROPIC_API_KEY: REAL_KEY,
    HOME: os.homedir(),
    BOTTLEKIT_GATEWAY_CONFIG: gatewayConfig,
  };
}

function claudeArgs(agent: string, prompt: string, extra: string[]): string[] {
  return [
    "run",
    agent,
    "--home",
    home.dir,
    "--cwd",
    project,
    "--agent-bin",
    platformBinary(),
    ...extra,
    "--",
    "-p",
    prompt,
    "--model",
    "claude-sonnet-4-5",
    "--permission-mode",
    "acceptEdits",
  ];
}

interface Totals {
  calls: number;
  /** Billable tokens: all input (cached included) plus output. */
  tokens: number;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/**
 * What the stand-in upstream reported, summed over the calls it answered, in the store's terms:
 * Anthropic's `input_tokens` leaves out cache reads and writes, the ledger's input includes them.
 */
function reported(requests: RecordedRequest[]): Totals {
  const t: Totals = { calls: 0, tokens: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  for (const q of requests) {
    if (q.api !== "anthropic-messages" || q.usage === undefined) continue;
    const cacheRead = q.usage.cacheRead ?? 0;
    const cacheWrite = q.usage.cacheWrite ?? 0;
    const input = q.usage.input + cacheRead + cacheWrite;
    t.calls++;
    t.tokens += input + q.usage.output;
    t.input += input;
    t.output += q.usage.output;
    t.cacheRead += cacheRead;
    t.cacheWrite += cacheWrite;
  }
  return t;
}

/** What the store's ledger holds for a bottle. */
function ledger(events: UsageEvent[]): Totals {
  const t: Totals = { calls: 0, tokens: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  for (const e of events) {
    t.calls++;
    t.tokens += e.tokens;
    t.input += e.inputTokens;
    t.output += e.outputTokens;
    t.cacheRead += e.cacheReadTokens;
    t.cacheWrite += e.cacheWriteTokens;
  }
  return t;
}

async function storeEvents(bottle: string): Promise<UsageEvent[]> {
  const store = await openStore(undefined, { home: home.dir });
  try {
    return await store.events({ bottle });
  } finally {
    await store.close();
  }
}

describe("Claude Code under bottle run, metered by the embedded gateway", () => {
  it("the answer reaches the user and the store's ledger equals the upstream's reported usage", async () => {
    const before = fake.requests.length;
    fake.enqueue(
      {
        toolCalls: [
          {
            id: "toolu_m0",
            name: "Bash",
            arguments: JSON.stringify({ command: "ls", description: "list" }),
          },
        ],
        usage: { input: 1234, output: 56, cacheRead: 7, cacheWrite: 3 },
      },
      { text: "The answer is 42.", usage: { input: 2345, output: 67 } },
    );
    fake.setDefaultReply({ text: "The answer is 42." });
    const r = await claude("coder", "look around and tell me the answer");
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out, r.err).toContain("The answer is 42.");
    expect(r.code).toBe(0);
    const served = fake.requests.slice(before);
    const messages = served.filter((q) => q.api === "anthropic-messages");
    // Both scripted replies were served (the tool ran in the sandbox and its output went back).
    expect(
      messages.some((q) => q.rawBody.includes("toolu_m0") && q.rawBody.includes("notes.txt")),
    ).toBe(true);
    // The real key was injected by the gateway; the agent held a placeholder.
    expect(messages.every((q) => q.headers["x-api-key"] === REAL_KEY)).toBe(true);
    expect(r.out + r.err).not.toContain(REAL_KEY);
    // Metered exactly: one ledger event per answered call, token for token.
    const want = reported(served);
    expect(want.calls).toBeGreaterThanOrEqual(2);
    const events = await storeEvents("metered");
    expect(ledger(events)).toEqual(want);
    expect(events.every((e) => e.provider === "anthropic" && e.agent === "coder")).toBe(true);
    expect(events.every((e) => !e.usageMissing)).toBe(true);
  }, 180_000);

  it("a budget smaller than the second call's need applies the bottle's cutoff (kill) to the live agent", async () => {
    const before = fake.requests.length;
    fake.enqueue(
      {
        toolCalls: [
          {
            id: "toolu_s0",
            name: "Bash",
            arguments: JSON.stringify({ command: "ls", description: "list" }),
          },
        ],
        usage: { input: 1000, output: 10 },
      },
      {
        // The second call's usage spends the budget; the agent then waits in a tool call that
        // only the cutoff ends.
        toolCalls: [
          {
            id: "toolu_s1",
            name: "Bash",
            arguments: JSON.stringify({ command: "cat gate.fifo", description: "wait" }),
          },
        ],
        usage: { input: 2_000_000, output: 20 },
      },
    );
    fake.setDefaultReply({ text: "should not be asked" });
    const r = await claude("spender", "spend it", ["--budget", "anthropic=1000000"]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/killed \(bottle tight budget for anthropic spent/);
    const kills = readAudit(home.dir).filter((a) => a.action === "kill" && a.bottle === "tight");
    expect(kills).toHaveLength(1);
    expect(kills[0]?.by).toBe("budget");
    const served = fake.requests.slice(before);
    // No call after the crossing reached the upstream.
    expect(served.some((q) => q.rawBody.includes("toolu_s1"))).toBe(false);
    const events = await storeEvents("tight");
    expect(ledger(events)).toEqual(reported(served));
    expect(ledger(events).input).toBeGreaterThanOrEqual(2_001_000);
    const store = await openStore(undefined, { home: home.dir });
    try {
      expect((await store.cutoffState("tight"))?.policy).toBe("kill");
    } finally {
      await store.close();
    }
  }, 180_000);

  it("with the cutoff policy, a budget the second call spends cuts the live session off and the agent keeps running", async () => {
    const before = fake.requests.length;
    fake.enqueue(
      {
        toolCalls: [
          {
            id: "toolu_c0",
            name: "Bash",
            arguments: JSON.stringify({ command: "ls", description: "list" }),
          },
        ],
        usage: { input: 1000, output: 10 },
      },
      {
        toolCalls: [
          {
            id: "toolu_c1",
            name: "Bash",
            arguments: JSON.stringify({ command: "cat gate.fifo", description: "wait" }),
          },
        ],
        usage: { input: 2_000_000, output: 20 },
      },
    );
    fake.setDefaultReply({ text: "should not be asked" });
    const child = spawnBottle(
      claudeArgs("capper", "spend it", ["--budget", "anthropic=1000000"]),
      claudeEnv(),
    );
    const run = collect(child);
    try {
      await waitFor("the cutoff", () => /cut off \(bottle capped budget/.test(run.err()));
      expect(run.err()).toContain("the agent keeps running, its egress is refused");
      // Still alive after the cutoff: the agent's `cat` is there to read what the test writes
      // (opening a FIFO for writing waits for its reader).
      const gate = await fs.promises.open(path.join(project, "gate.fifo"), "w");
      await gate.write("released\n");
      await gate.close();
    } finally {
      // Claude Code retries refused calls with backoff: the operator stops the session.
      child.kill("SIGTERM");
    }
    const r = await run.done;
    expect(r.code).toBe(3);
    const actions = readAudit(home.dir)
      .filter((a) => a.bottle === "capped")
      .map((a) => a.action);
    expect(actions).toEqual(["cutoff", "stop"]);
    const served = fake.requests.slice(before);
    // Nothing after the crossing (the released tool's result) reached the upstream.
    expect(served.some((q) => q.rawBody.includes("toolu_c1"))).toBe(false);
    const events = await storeEvents("capped");
    expect(ledger(events)).toEqual(reported(served));
  }, 180_000);

  it("with a controller running (the gateway's proxy door, as bottle-gateway up serves it), bottle run registers over its socket and is metered there", async () => {
    const running = await startGateway({
      proxyDoor: true,
      listen: "127.0.0.1:0",
      configFile: gatewayConfig,
      env: { BOTTLEKIT_HOME: home.dir, ANTHROPIC_API_KEY: REAL_KEY, PATH: process.env["PATH"] },
      // The proxy host checks declared credentials against its own source (by default this
      // process's environment, which the test leaves alone).
      proxyOptions: {
        credentialSource: (spec) => (spec.name === "ANTHROPIC_API_KEY" ? REAL_KEY : undefined),
      },
    });
    try {
      expect(running.proxy?.controlSocketPath).toBe(
        path.join(home.dir, "state", "egress-proxy.sock"),
      );
      const before = fake.requests.length;
      const eventsBefore = (await running.store.events({ bottle: "metered" })).length;
      fake.enqueue({ text: "Metered by the host controller.", usage: { input: 321, output: 9 } });
      fake.setDefaultReply({ text: "Metered by the host controller." });
      const r = await claude("coder", "say something");
      expect(r.out, r.err).toContain("Metered by the host controller.");
      expect(r.code).toBe(0);
      const served = fake.requests.slice(before);
      expect(served.every((q) => q.headers["x-api-key"] === REAL_KEY)).toBe(true);
      const events = (await running.store.events({ bottle: "metered" })).slice(eventsBefore);
      expect(ledger(events)).toEqual(reported(served));
      expect(ledger(events).calls).toBeGreaterThanOrEqual(1);
    } finally {
      await running.close(0);
    }
  }, 180_000);
});
