/**
 * The `codex-cli/*` local-agent provider: the real Codex CLI (pinned devDependency, `codex exec
 * --json`), spawned by the gateway's bridge per request, driven against a local stand-in for its
 * own provider (a fake upstream speaking OpenAI Responses, named in $CODEX_HOME/config.toml),
 * answering `openai` SDK clients of the Responses API (same API) and of Chat Completions
 * (translated). Never as root: under root (CI) the bridge runs Codex as `nobody`.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { evaluateLocalAgentGate } from "@bottlekit/local-agent-warning";
import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../src/compose.ts";
import type { GatewayLogEvent } from "../src/server.ts";
import { agentDir, codexLauncher } from "./e2e/helpers.ts";

const STANDIN_KEY = "sk-proj-LOCALcodexSTANDINkey0123456789abcdefABCDEF0123";
const ROOT = process.getuid?.() === 0;

let up: FakeUpstream;
let home: TempHome;
let gw: RunningGateway | undefined;
let logs: GatewayLogEvent[] = [];

beforeAll(async () => {
  up = await createFakeUpstream({ requireKey: STANDIN_KEY });
});
afterAll(() => up.close());
afterEach(async () => {
  await gw?.close(1_000);
  gw = undefined;
  const traffic = up.requests.map((r) => `${r.method} ${r.path} usage=${JSON.stringify(r.usage)}`);
  if (traffic.length > 0) process.stderr.write(`stand-in traffic:\n  ${traffic.join("\n  ")}\n`);
  up.reset();
  await home.cleanup();
});

/** `later`: settings changed after the acknowledgement, before the gateway starts. */
async function start(ack = true, later: NodeJS.ProcessEnv = {}): Promise<OpenAI> {
  home = await createTempHome("bottlekit-local-codex-");
  chmodSync(home.dir, 0o755);
  const codexHome = agentDir(join(home.dir, "codex-home"));
  const config = join(codexHome, "config.toml");
  writeFileSync(
    config,
    [
      'model = "gpt-5-codex"',
      'model_provider = "standin"',
      "[model_providers.standin]",
      'name = "stand-in"',
      `base_url = "${up.url}/v1"`,
      'env_key = "CODEX_API_KEY"',
      'wire_api = "responses"',
      "",
    ].join("\n"),
  );
  chmodSync(config, 0o644);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"],
    BOTTLEKIT_HOME: home.dir,
    CODEX_CLI_BIN: codexLauncher(),
    CODEX_CLI_PERMISSION_MODE: "read-only",
    CODEX_CLI_HOME: agentDir(join(home.dir, "agent-home")),
    ...(ROOT ? { CODEX_CLI_RUN_AS: "65534:65534" } : {}),
    CODEX_HOME: codexHome,
    CODEX_API_KEY: STANDIN_KEY,
  };
  const gwConfig = {
    model_providers: [{ model: "codex-cli/*" }],
    timeouts: { upstream_ms: 60_000, stream_idle_ms: 60_000, drain_ms: 1_000 },
  };
  if (ack) {
    const gate = await evaluateLocalAgentGate({
      config: gwConfig,
      ackFlag: true,
      env,
      home: home.dir,
    });
    expect(gate.action).toBe("acknowledged");
  }
  logs = [];
  gw = await startGateway({
    config: gwConfig,
    listen: "127.0.0.1:0",
    store: `sqlite:${home.dir}/bottlekit.db`,
    env: { ...env, ...later },
    identityCacheMs: 0,
    log: (e) => logs.push(e),
  });
  return new OpenAI({
    apiKey: "local-unused",
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
    timeout: 90_000,
  });
}

// Hang guards only (real CLIs on a loaded 2-core machine): nothing asserts on elapsed time.
describe("codex-cli/* answers openai SDK clients from the real Codex CLI", {
  timeout: 120_000,
}, () => {
  it("Responses (same API) non-streamed, then Chat Completions streamed (translated): text and exact usage", async () => {
    const client = await start();
    up.enqueue({ text: "Hello from the Codex stand-in.", usage: { input: 1200, output: 30 } });
    const r = await client.responses.create({
      model: "codex-cli/gpt-5-codex",
      instructions: "Answer in one line.",
      input: "Say hello.",
    });
    expect(r.output_text).toBe("Hello from the Codex stand-in.");
    expect(r.usage).toMatchObject({ input_tokens: 1200, output_tokens: 30 });
    const seen = JSON.stringify(up.requests.at(-1)?.body);
    expect(seen).toContain("Answer in one line.");
    expect(seen).toContain("Say hello.");

    up.enqueue({ text: "Streamed by Codex.", usage: { input: 800, output: 12 } });
    const stream = await client.chat.completions.create({
      model: "codex-cli/gpt-5-codex",
      messages: [{ role: "user", content: "Stream it." }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Streamed by Codex.");
    expect(usage).toMatchObject({ prompt_tokens: 800, completion_tokens: 12 });
    expect(logs.filter((l) => l.event === "local_cli.spawn").length).toBe(2);
    await expect
      .poll(
        async () =>
          (await gw?.store.events())?.map((e) => [e.provider, e.inputTokens, e.outputTokens]),
        { timeout: 60_000 },
      )
      .toEqual([
        ["codex-cli", 1200, 30],
        ["codex-cli", 800, 12],
      ]);
  });

  it("without the acknowledgement: refused in the Responses error shape, nothing spawned", async () => {
    const client = await start(false);
    const err = await client.responses
      .create({ model: "codex-cli/gpt-5-codex", input: "hi" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(String((err as Error).message)).toMatch(/codex-cli is not acknowledged/);
    expect(logs.filter((l) => l.event === "local_cli.spawn")).toEqual([]);
    expect(up.requests.length).toBe(0);
  });

  it("a working directory or tools changed since the acknowledgement: refused, named, nothing spawned", async () => {
    for (const [later, named] of [
      [{ CODEX_CLI_CWD: "/" }, "the working directory changed (CODEX_CLI_CWD)"],
      [{ CODEX_CLI_TOOLS: "shell" }, "the tools changed (CODEX_CLI_TOOLS)"],
    ] as const) {
      const client = await start(true, later);
      const err = await client.responses
        .create({ model: "codex-cli/gpt-5-codex", input: "hi" })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
      expect(String((err as Error).message)).toContain(named);
      expect(String((err as Error).message)).toContain("--ack-local-agents");
      expect(logs.filter((l) => l.event === "local_cli.spawn")).toEqual([]);
      await gw?.close(1_000);
      gw = undefined;
      await home.cleanup();
    }
    // afterEach cleans the last home again; give it one to clean.
    home = await createTempHome("bottlekit-local-codex-");
    expect(up.requests.length).toBe(0);
  });

  it("a client that disconnects mid-answer: Codex's process tree is killed", async () => {
    const client = await start();
    up.enqueue({ pieces: Array.from({ length: 200 }, (_, i) => `w${i} `), frameDelayMs: 100 });
    const ac = new AbortController();
    const pending = client.responses
      .create({ model: "codex-cli/gpt-5-codex", input: "go", stream: true }, { signal: ac.signal })
      .then(async (s) => {
        for await (const _ of s) void _;
      })
      .catch((e: unknown) => e);
    await expect.poll(() => up.requests.length, { timeout: 60_000 }).toBeGreaterThan(0);
    const pid = Number(logs.find((l) => l.event === "local_cli.spawn")?.["pid"]);
    expect(pid).toBeGreaterThan(0);
    ac.abort();
    await pending;
    // The whole process group (the launcher and the native binary it starts) is gone.
    const alive = () => {
      try {
        process.kill(-pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await expect.poll(alive, { timeout: 60_000 }).toBe(false);
    expect(logs.some((l) => l.event === "local_cli.cancelled" && l["pid"] === pid)).toBe(true);
    await up.waitForAbort(60_000);
  });
});
