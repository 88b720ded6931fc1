/**
 * End to end through translation: the real Codex CLI (pinned devDependency, `codex exec`,
 * Responses API) against `bottle-gateway up`, with a model whose provider speaks Anthropic
 * Messages only (a local upstream speaking that wire format, SSE). Codex sends tools of its own
 * kinds (`namespace`, …); the gateway flattens what Messages can express and maps the calls
 * back. Never as root: under root (CI) Codex runs as `nobody` (see e2e/helpers.ts).
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import {
  createFakeUpstream,
  createTempHome,
  type FakeReply,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentDir, codexLauncher, type RunningBin, runAgent, startBin } from "./e2e/helpers.ts";

const KEY = "sk-ant-api03-E2EcodexOnClaudeKEY0123456789abcdefABCDEF0123456789-xyzAA";
const MODEL = "anthropic/claude-sonnet-4-5";

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
    (r) => `${r.method} ${r.path} ${r.rawBody.length}B usage=${JSON.stringify(r.usage)}`,
  );
  if (traffic.length > 0) process.stderr.write(`upstream traffic:\n  ${traffic.join("\n  ")}\n`);
  up.reset();
  await home.cleanup();
});

interface CodexRun {
  status: number | null;
  stdout: string;
  /** The Messages requests the upstream received (one per model call). */
  calls: Record<string, unknown>[];
  /** [input, output] of each ledger event. */
  ledger: [number, number][];
  missing: boolean[];
}

/**
 * `codex exec` through `bottle-gateway up` on a Messages-only upstream that answers with
 * `firstTurn` (a tool call) and then a final text.
 */
async function runCodex(firstTurn: FakeReply, answer: string): Promise<CodexRun> {
  home = await createTempHome("bottlekit-e2e-codex-claude-");
  chmodSync(home.dir, 0o755);
  const config = await home.write(
    "gw.yml",
    [
      "model_providers:",
      "  - model: anthropic/*",
      `    base_url: ${up.url}/v1`,
      "    access_key: $ANTHROPIC_API_KEY",
      "",
    ].join("\n"),
  );
  const gw = startBin(config, {
    PATH: process.env["PATH"],
    BOTTLEKIT_HOME: home.dir,
    ANTHROPIC_API_KEY: KEY,
  });
  running = gw;
  const url = await gw.url;
  const codexHome = agentDir(join(home.dir, "codex-home"));
  const work = agentDir(join(home.dir, "work"));
  writeFileSync(join(work, "note.txt"), "the password is banana-split\n");
  chmodSync(join(work, "note.txt"), 0o644);
  const codexConfig = join(codexHome, "config.toml");
  writeFileSync(
    codexConfig,
    [
      `model = "${MODEL}"`,
      'model_provider = "bottlekit"',
      // OpenAI's hosted web search has no equivalent on Claude: the gateway refuses it, named.
      'web_search = "disabled"',
      "[model_providers.bottlekit]",
      'name = "bottlekit gateway"',
      `base_url = "${url}/v1"`,
      'env_key = "CODEX_API_KEY"',
      'wire_api = "responses"',
      "",
    ].join("\n"),
  );
  chmodSync(codexConfig, 0o644);
  up.enqueue(firstTurn, { text: answer, usage: { input: 1100, output: 9 } });
  const r = await runAgent(
    [
      process.execPath,
      codexLauncher(),
      "exec",
      "--skip-git-repo-check",
      "--sandbox",
      "danger-full-access",
      "What does note.txt say?",
    ],
    {
      cwd: work,
      env: {
        PATH: process.env["PATH"],
        HOME: work,
        CODEX_HOME: codexHome,
        CODEX_API_KEY: "bottlekit-local",
      },
      timeoutMs: 90_000,
    },
  );
  expect(
    r.status,
    `${r.stderr}${r.stdout}${JSON.stringify(gw.logs().filter((l) => l["level"] !== "info"))}`,
  ).toBe(0);
  await gw.stop();
  const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`, {
    home: home.dir,
    reclaimOnOpen: false,
  });
  const events = await store.events();
  await store.close();
  return {
    status: r.status,
    stdout: r.stdout,
    calls: up.requests
      .filter((q) => q.api === "anthropic-messages")
      .map((q) => q.body as Record<string, unknown>),
    ledger: events.map((e) => [e.inputTokens, e.outputTokens]),
    missing: events.map((e) => e.usageMissing),
  };
}

/** The tool results Codex sent back in a Messages request. */
function toolResults(body: Record<string, unknown> | undefined): Record<string, unknown>[] {
  const messages = (body?.["messages"] ?? []) as { content: unknown }[];
  return messages.flatMap((m) =>
    Array.isArray(m.content)
      ? (m.content as Record<string, unknown>[]).filter((c) => c["type"] === "tool_result")
      : [],
  );
}

// Hang guards above Codex's own 90 s bound (two CLI turns on a loaded 2-core machine).
describe("Codex on an Anthropic model, translated by the gateway", { timeout: 120_000 }, () => {
  it("a two-turn run with a tool: the answer reaches the user; the ledger equals the upstream's usage", async () => {
    const run = await runCodex(
      {
        toolCalls: [{ name: "exec_command", arguments: JSON.stringify({ cmd: "cat note.txt" }) }],
        usage: { input: 900, output: 20 },
      },
      "The note says: banana-split.",
    );
    expect(run.stdout.trim()).toBe("The note says: banana-split.");
    expect(run.calls.length).toBe(2);
    // Codex's namespace tools reached Claude flattened (namespace__tool).
    const tools = ((run.calls[0]?.["tools"] ?? []) as { name: string }[]).map((t) => t.name);
    expect(tools).toContain("exec_command");
    expect(tools).toContain("multi_agent_v1__close_agent");
    // Turn two carried the command's output: the tool really ran.
    expect(JSON.stringify(toolResults(run.calls[1]))).toContain("banana-split");
    expect(run.missing).toEqual([false, false]);
    expect(run.ledger).toEqual([
      [900, 20],
      [1100, 9],
    ]);
  });

  it("a call to a namespaced tool reaches Codex's own handler of that tool, and goes back flattened", async () => {
    const run = await runCodex(
      {
        toolCalls: [
          {
            name: "multi_agent_v1__close_agent",
            arguments: JSON.stringify({ target: "agent-that-does-not-exist" }),
          },
        ],
        usage: { input: 700, output: 15 },
      },
      "No such agent.",
    );
    expect(run.stdout.trim()).toBe("No such agent.");
    expect(run.calls.length).toBe(2);
    const history = JSON.stringify((run.calls[1]?.["messages"] ?? []) as unknown[]);
    expect(history).toContain('"name":"multi_agent_v1__close_agent"');
    // close_agent itself answered (it parses the id); an unknown tool would be "unsupported".
    const [result] = toolResults(run.calls[1]);
    expect(String(result?.["content"])).toContain("invalid agent id agent-that-does-not-exist");
    expect(run.ledger).toEqual([
      [700, 15],
      [1100, 9],
    ]);
  });
});
