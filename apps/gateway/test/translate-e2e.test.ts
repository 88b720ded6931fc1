/**
 * End to end through translation: the real Claude Code CLI (pinned devDependency) against
 * `bottle-gateway up`, with a model whose provider speaks OpenAI Chat Completions only (a local
 * upstream speaking that wire format). Claude Code never runs as root: under root (CI) it runs
 * as `nobody` (see e2e/helpers.ts).
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
import { agentDir, claudeBinary, type RunningBin, runAgent, startBin } from "./e2e/helpers.ts";

const KEY = "sk-proj-Q7vLm2Xr9TfW4kNz8HcB3yJd6PsA1eGu5RtY0oKiWq";
const MODEL = "local/qwen3-coder";

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

describe("Claude Code on a Chat-Completions-only model, translated by the gateway", () => {
  it("a two-turn run with a tool: the answer reaches the user; the ledger equals the upstream's usage", async () => {
    home = await createTempHome("bottlekit-e2e-translate-");
    chmodSync(home.dir, 0o755);
    const config = await home.write(
      "gw.yml",
      [
        "model_providers:",
        `  - model: ${MODEL}`,
        "    provider_interface: openai",
        `    base_url: ${up.url}/v1`,
        "    access_key: $LOCAL_LLM_KEY",
        "",
      ].join("\n"),
    );
    const gw = startBin(config, {
      PATH: process.env["PATH"],
      BOTTLEKIT_HOME: home.dir,
      LOCAL_LLM_KEY: KEY,
    });
    running = gw;
    const url = await gw.url;
    const hd = agentDir(join(home.dir, "agent-home"));
    const project = agentDir(join(home.dir, "project"));
    writeFileSync(join(project, "note.txt"), "the password is banana-split\n");
    up.enqueue(
      {
        toolCalls: [
          { name: "Read", arguments: JSON.stringify({ file_path: join(project, "note.txt") }) },
        ],
        usage: { input: 900, output: 20 },
      },
      { text: "The note says: banana-split.", usage: { input: 1100, output: 9 } },
    );
    const r = await runAgent(
      [
        claudeBinary(),
        "-p",
        "What does note.txt say?",
        "--output-format",
        "json",
        "--model",
        MODEL,
        "--no-session-persistence",
        "--allowedTools",
        "Read",
      ],
      {
        cwd: project,
        env: {
          PATH: process.env["PATH"],
          HOME: hd,
          ANTHROPIC_BASE_URL: url,
          ANTHROPIC_API_KEY: "bottlekit-local",
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
          DISABLE_AUTOUPDATER: "1",
        },
        timeoutMs: 60_000,
      },
    );
    expect(
      r.status,
      `${r.stderr}${r.stdout}${JSON.stringify(gw.logs().filter((l) => l["level"] !== "info"))}`,
    ).toBe(0);
    const out = JSON.parse(r.stdout) as { result: string; is_error: boolean };
    expect(out.is_error).toBe(false);
    expect(out.result).toBe("The note says: banana-split.");
    const calls = up.requests.filter((q) => q.api === "openai-chat");
    expect(calls.length).toBe(2);
    // Turn two carried the tool's result as a Chat Completions tool message: the tool really ran.
    const turn2 = calls[1]?.body as { messages: { role: string; content: unknown }[] };
    const toolMsg = turn2.messages.find((m) => m.role === "tool");
    expect(JSON.stringify(toolMsg)).toContain("banana-split");
    await gw.stop();
    const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`, {
      home: home.dir,
      reclaimOnOpen: false,
    });
    const events = await store.events();
    await store.close();
    expect(events.map((e) => e.usageMissing)).toEqual([false, false]);
    expect(events.map((e) => [e.inputTokens, e.outputTokens])).toEqual([
      [900, 20],
      [1100, 9],
    ]);
  });
});
