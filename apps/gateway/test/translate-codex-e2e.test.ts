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

describe("Codex on an Anthropic model, translated by the gateway", () => {
  it("a two-turn run with a tool: the answer reaches the user; the ledger equals the upstream's usage", async () => {
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
    up.enqueue(
      {
        toolCalls: [
          {
            name: "exec_command",
            arguments: JSON.stringify({ cmd: "cat note.txt", workdir: work }),
          },
        ],
        usage: { input: 900, output: 20 },
      },
      { text: "The note says: banana-split.", usage: { input: 1100, output: 9 } },
    );
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
    const calls = up.requests.filter((q) => q.api === "anthropic-messages");
    expect(
      r.status,
      `${r.stderr}${r.stdout}${JSON.stringify(gw.logs().filter((l) => l["level"] !== "info"))}`,
    ).toBe(0);
    expect(r.stdout.trim()).toBe("The note says: banana-split.");
    expect(calls.length).toBe(2);
    // Codex's namespace tools reached Claude flattened (namespace__tool).
    const first = calls[0]?.body as { tools: { name: string }[] } | undefined;
    const tools = (first?.tools ?? []).map((t) => t.name);
    expect(tools).toContain("exec_command");
    expect(tools.some((n) => /^[a-z0-9_]+__[a-z0-9_]+$/.test(n))).toBe(true);
    const turn2 = JSON.stringify(calls[1]?.body);
    expect(turn2).toContain("banana-split");
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
    // A hang guard above Codex's own 90 s bound (two CLI turns on a loaded 2-core machine).
  }, 120_000);
});
