/**
 * The `claude-cli/*` local-agent provider: the real Claude Code binary (pinned devDependency),
 * spawned by the gateway's bridge per request, driven against a local stand-in for its own
 * provider (ANTHROPIC_BASE_URL → a fake upstream speaking Anthropic Messages SSE), answering an
 * `openai` SDK client through translation. Claude Code never runs as root: when the tests run as
 * root (CI) the bridge runs it as `nobody` (CLAUDE_CLI_RUN_AS), and without that it refuses.
 */
import { chmodSync, mkdirSync } from "node:fs";
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
import { BRIDGE_HEADER, startClaudeBridge } from "../src/local-cli/bridge.ts";
import type { GatewayLogEvent } from "../src/server.ts";
import { agentDir, claudeBinary } from "./e2e/helpers.ts";

const STANDIN_KEY = "sk-ant-api03-LOCALcliSTANDINkey0123456789abcdefABCDEF-xyzAA";
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
  up.reset();
  await home.cleanup();
});

/** The gateway's environment: the CLI's configuration and its own provider (the stand-in). */
function cliEnv(runAs = true): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"],
    BOTTLEKIT_HOME: home.dir,
    CLAUDE_CLI_BIN: claudeBinary(),
    CLAUDE_CLI_PERMISSION_MODE: "default",
    CLAUDE_CLI_HOME: agentDir(join(home.dir, "claude-home")),
    ...(ROOT && runAs ? { CLAUDE_CLI_RUN_AS: "65534:65534" } : {}),
    ANTHROPIC_BASE_URL: up.url,
    ANTHROPIC_API_KEY: STANDIN_KEY,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
  };
}

async function start(env: NodeJS.ProcessEnv, ack: boolean): Promise<OpenAI> {
  const config = {
    model_providers: [{ model: "claude-cli/*" }],
    timeouts: { upstream_ms: 60_000, stream_idle_ms: 60_000, drain_ms: 1_000 },
  };
  if (ack) {
    const gate = await evaluateLocalAgentGate({ config, ackFlag: true, env, home: home.dir });
    expect(gate.action).toBe("acknowledged");
  }
  logs = [];
  gw = await startGateway({
    config,
    listen: "127.0.0.1:0",
    store: `sqlite:${home.dir}/bottlekit.db`,
    env,
    identityCacheMs: 0,
    log: (e) => logs.push(e),
  });
  return new OpenAI({
    apiKey: "local-unused",
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
    timeout: 60_000,
  });
}

async function newHome(): Promise<void> {
  home = await createTempHome("bottlekit-local-cli-");
  chmodSync(home.dir, 0o755);
}

/** One request straight to a bridge started with `env`: the status, error message and logs. */
async function refusedBy(
  env: NodeJS.ProcessEnv,
): Promise<{ status: number; message: string; logs: { event: string; [k: string]: unknown }[] }> {
  const bridgeLogs: { event: string; [k: string]: unknown }[] = [];
  const bridge = await startClaudeBridge({
    env,
    home: home.dir,
    loopback: true,
    log: (e) => bridgeLogs.push(e),
  });
  try {
    const res = await fetch(`${bridge.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", [BRIDGE_HEADER]: bridge.secret },
      body: JSON.stringify({
        model: "sonnet",
        max_tokens: 100,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    const body = (await res.json()) as { error: { message: string } };
    return { status: res.status, message: body.error.message, logs: bridgeLogs };
  } finally {
    await bridge.close();
  }
}

function spawned(): number[] {
  return logs.filter((l) => l.event === "local_cli.spawn").map((l) => Number(l["pid"]));
}

/** Whether any process of the CLI's process group (its pid is the group's id) is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Hang guards only (real CLIs on a loaded 2-core machine): nothing asserts on elapsed time.
describe("claude-cli/* answers an openai SDK client from the real Claude Code binary", {
  timeout: 120_000,
}, () => {
  it("non-streamed: the stand-in's answer, the system prompt handed over, usage exact in the ledger", async () => {
    await newHome();
    const client = await start(cliEnv(), true);
    up.enqueue({ text: "Hello from the stand-in.", usage: { input: 900, output: 20 } });
    const r = await client.chat.completions.create({
      model: "claude-cli/sonnet",
      messages: [
        { role: "system", content: "Answer in one short line." },
        { role: "user", content: "Say hello." },
      ],
    });
    expect(r.choices[0]?.message.content).toBe("Hello from the stand-in.");
    expect(r.usage).toMatchObject({ prompt_tokens: 900, completion_tokens: 20 });
    // Claude Code called its own provider once, with our system prompt and the user's words.
    const calls = up.requests.filter((q) => q.api === "anthropic-messages");
    expect(calls.length).toBe(1);
    const sent = JSON.stringify(calls[0]?.body);
    expect(sent).toContain("Answer in one short line.");
    expect(sent).toContain("Say hello.");
    expect(spawned().length).toBe(1);
    const events = await gw?.store.events();
    expect(events?.map((e) => [e.provider, e.inputTokens, e.outputTokens, e.usageMissing])).toEqual(
      [["claude-cli", 900, 20, false]],
    );
  });

  it("the acknowledged tools are the ones Claude Code offers its provider", async () => {
    await newHome();
    const work = join(home.dir, "work");
    mkdirSync(work, { mode: 0o755 });
    const client = await start(
      { ...cliEnv(), CLAUDE_CLI_TOOLS: "Read, Grep", CLAUDE_CLI_CWD: work },
      true,
    );
    up.enqueue({ text: "ok", usage: { input: 10, output: 1 } });
    const r = await client.chat.completions.create({
      model: "claude-cli/sonnet",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(r.choices[0]?.message.content).toBe("ok");
    const call = up.requests.find((q) => q.api === "anthropic-messages");
    expect(call).toBeDefined();
    const body = (call?.body ?? {}) as { tools?: { name: string }[] };
    const tools = (body.tools ?? []).map((t) => t.name);
    expect(tools).toContain("Read");
    expect(tools).toContain("Grep");
    expect(tools).not.toContain("Bash");
    expect(tools).not.toContain("Write");
  });

  it("streamed (include_usage): the same text in deltas, the usage chunk, the ledger", async () => {
    await newHome();
    const client = await start(cliEnv(), true);
    up.enqueue({ text: "Streaming from the stand-in.", usage: { input: 700, output: 11 } });
    const stream = await client.chat.completions.create({
      model: "claude-cli/sonnet",
      messages: [{ role: "user", content: "Stream something." }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let pieces = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content ?? "";
      if (piece !== "") pieces++;
      text += piece;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Streaming from the stand-in.");
    // Token deltas, as the stand-in streamed them to Claude Code (4 words), not one block.
    expect(pieces).toBe(4);
    expect(usage).toMatchObject({ prompt_tokens: 700, completion_tokens: 11 });
    await expect
      .poll(async () => (await gw?.store.events())?.map((e) => [e.inputTokens, e.outputTokens]), {
        timeout: 60_000,
      })
      .toEqual([[700, 11]]);
  });

  it("a client tool cannot be handed to the agent: 400 naming the field, nothing spawned", async () => {
    await newHome();
    const client = await start(cliEnv(), true);
    const err = await client.chat.completions
      .create({
        model: "claude-cli/sonnet",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(String((err as Error).message)).toContain("tools:");
    expect(spawned()).toEqual([]);
    expect(up.requests.length).toBe(0);
  });
});

describe("claude-cli/* refusals and cancellation", { timeout: 120_000 }, () => {
  it("without the local-agent acknowledgement: refused, named, nothing spawned", async () => {
    await newHome();
    const client = await start(cliEnv(), false);
    const err = await client.chat.completions
      .create({ model: "claude-cli/sonnet", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(String((err as Error).message)).toMatch(/not acknowledged.*--ack-local-agents/);
    expect(spawned()).toEqual([]);
    expect(up.requests.length).toBe(0);
  });

  it("an acknowledgement for another permission mode does not cover this one", async () => {
    await newHome();
    const env = cliEnv();
    await start(env, true);
    await gw?.close(1_000);
    const client = await start({ ...env, CLAUDE_CLI_PERMISSION_MODE: "bypassPermissions" }, false);
    const err = await client.chat.completions
      .create({ model: "claude-cli/sonnet", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(String((err as Error).message)).toContain(
      "the permission mode changed (CLAUDE_CLI_PERMISSION_MODE)",
    );
    expect(spawned()).toEqual([]);
  });

  it("an acknowledgement covers tools, working directory, HOME and run-as account: any change is refused, named, with the command", async () => {
    await newHome();
    const env = { ...cliEnv(), CLAUDE_CLI_TOOLS: "Read", CLAUDE_CLI_CWD: home.dir };
    await evaluateLocalAgentGate({
      config: { model_providers: [{ model: "claude-cli/*" }] },
      ackFlag: true,
      env,
      home: home.dir,
    });
    const changes: [NodeJS.ProcessEnv, string, string][] = [
      [{ CLAUDE_CLI_TOOLS: "Read,Bash" }, "the tools changed (CLAUDE_CLI_TOOLS)", "tools-changed"],
      [{ CLAUDE_CLI_TOOLS: "" }, "the tools changed (CLAUDE_CLI_TOOLS)", "tools-changed"],
      [{ CLAUDE_CLI_CWD: "/" }, "the working directory changed (CLAUDE_CLI_CWD)", "cwd-changed"],
      [{ CLAUDE_CLI_HOME: home.dir }, "HOME changed (CLAUDE_CLI_HOME)", "home-changed"],
      [
        { CLAUDE_CLI_RUN_AS: ROOT ? "65534" : "nobody" },
        "the run-as account changed (CLAUDE_CLI_RUN_AS)",
        "run-as-changed",
      ],
    ];
    for (const [change, named, reason] of changes) {
      const body = await refusedBy({ ...env, ...change });
      expect(body.status).toBe(403);
      expect(body.message).toContain(named);
      expect(body.message).toContain("--ack-local-agents");
      expect(body.logs.some((l) => l.event === "local_cli.spawn")).toBe(false);
      const refused = body.logs.find((l) => l.event === "local_cli.refused");
      expect(refused?.["reasons"]).toEqual([reason]);
    }
    // Acknowledged again for the new tools: covered (not refused for the acknowledgement).
    const widened = { ...env, CLAUDE_CLI_TOOLS: "Read,Bash" };
    await evaluateLocalAgentGate({
      config: { model_providers: [{ model: "claude-cli/*" }] },
      ackFlag: true,
      env: widened,
      home: home.dir,
    });
    const again = await refusedBy({ ...widened, CLAUDE_CLI_BIN: "/nonexistent/claude" });
    // Only the binary differs now, so only the binary is named.
    expect(again.message).toContain("the binary changed (CLAUDE_CLI_BIN)");
    expect(again.message).not.toContain("tools changed");
    expect(up.requests.length).toBe(0);
  });

  it("an acknowledgement file from before settings were recorded does not cover a configuration that sets them", async () => {
    await newHome();
    const env = cliEnv(); // sets CLAUDE_CLI_HOME (and, as root, CLAUDE_CLI_RUN_AS)
    const gate = await evaluateLocalAgentGate({
      config: { model_providers: [{ model: "claude-cli/*" }] },
      env,
      home: home.dir,
      interactive: false,
    });
    const runtime = gate.runtimes[0];
    // A version-1 file, as written before settings were recorded: binary and mode only.
    await home.write(
      "state/local_agent_ack.json",
      JSON.stringify({
        version: 1,
        interfaces: {
          "claude-cli": {
            acknowledgedAt: "2026-01-01T00:00:00Z",
            binary: runtime?.binary,
            binaryPath: runtime?.binaryPath,
            permissionMode: runtime?.permissionMode,
          },
        },
      }),
    );
    chmodSync(join(home.dir, "state", "local_agent_ack.json"), 0o600);
    const body = await refusedBy(env);
    expect(body.status).toBe(403);
    expect(body.message).toContain("HOME changed (CLAUDE_CLI_HOME)");
    expect(body.message).toContain("--ack-local-agents");
    expect(body.logs.some((l) => l.event === "local_cli.spawn")).toBe(false);
  });

  it("as root with no unprivileged account to run as: refused with the fix, nothing spawned", async () => {
    await newHome();
    const env = cliEnv(false);
    await evaluateLocalAgentGate({
      config: { model_providers: [{ model: "claude-cli/*" }] },
      ackFlag: true,
      env,
      home: home.dir,
    });
    const bridgeLogs: { event: string }[] = [];
    // Tests run as root in CI; elsewhere the caller's uid is given as root to the same check.
    const bridge = await startClaudeBridge({
      env,
      home: home.dir,
      loopback: true,
      log: (e) => bridgeLogs.push(e),
      ...(ROOT ? {} : { uid: () => 0 }),
    });
    try {
      const res = await fetch(`${bridge.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", [BRIDGE_HEADER]: bridge.secret },
        body: JSON.stringify({
          model: "sonnet",
          max_tokens: 100,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe("permission_error");
      expect(body.error.message).toMatch(/refusing to run claude-cli as root.*CLAUDE_CLI_RUN_AS/);
      expect(bridgeLogs.some((l) => l.event === "local_cli.spawn")).toBe(false);
      // Said at start as well.
      expect(bridgeLogs.some((l) => l.event === "local_cli.as_root")).toBe(true);
      // Without the bridge's secret, nobody else on the host is served.
      const stranger = await fetch(`${bridge.url}/v1/messages`, { method: "POST", body: "{}" });
      expect(stranger.status).toBe(403);
    } finally {
      await bridge.close();
    }
    expect(up.requests.length).toBe(0);
  });

  it("a gateway that does not listen on loopback: refused, nothing spawned", async () => {
    await newHome();
    const env = cliEnv();
    await evaluateLocalAgentGate({
      config: { model_providers: [{ model: "claude-cli/*" }] },
      ackFlag: true,
      env,
      home: home.dir,
    });
    const bridgeLogs: { event: string }[] = [];
    const bridge = await startClaudeBridge({
      env,
      home: home.dir,
      loopback: false,
      log: (e) => bridgeLogs.push(e),
    });
    try {
      const res = await fetch(`${bridge.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", [BRIDGE_HEADER]: bridge.secret },
        body: JSON.stringify({
          model: "sonnet",
          max_tokens: 100,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/only by a gateway listening on loopback/);
      expect(bridgeLogs.some((l) => l.event === "local_cli.spawn")).toBe(false);
    } finally {
      await bridge.close();
    }
    expect(up.requests.length).toBe(0);
  });

  it("a CLI that exits without an answer: a 502 saying so, streamed or not; nothing metered", async () => {
    await newHome();
    // The acknowledged binary is one that prints nothing and fails.
    const client = await start({ ...cliEnv(), CLAUDE_CLI_BIN: "/bin/false" }, true);
    const err = await client.chat.completions
      .create({ model: "claude-cli/sonnet", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(String((err as Error).message)).toMatch(/ended without an answer \(exit 1\)/);
    const streamed = await client.chat.completions
      .create({
        model: "claude-cli/sonnet",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      })
      .then(async (s) => {
        for await (const _ of s) void _;
      })
      .catch((e: unknown) => e);
    expect(String((streamed as Error).message)).toMatch(/ended without an answer/);
    expect(spawned().length).toBe(2);
    expect(up.requests.length).toBe(0);
  });

  it("a client that disconnects mid-answer: the CLI's process tree is killed", async () => {
    await newHome();
    const client = await start(cliEnv(), true);
    // The stand-in answers slowly, so the CLI is still running when the client goes away.
    up.enqueue({ pieces: Array.from({ length: 200 }, (_, i) => `w${i} `), frameDelayMs: 100 });
    const ac = new AbortController();
    const pending = client.chat.completions
      .create(
        { model: "claude-cli/sonnet", messages: [{ role: "user", content: "go" }], stream: true },
        { signal: ac.signal },
      )
      .then(async (s) => {
        for await (const _ of s) void _;
      })
      .catch((e: unknown) => e);
    // Wait (hang guard only) until Claude Code is talking to its provider, then disconnect.
    await expect.poll(() => up.requests.length, { timeout: 30_000 }).toBeGreaterThan(0);
    const [pid] = spawned();
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid as number)).toBe(true);
    ac.abort();
    await pending;
    await expect.poll(() => alive(pid as number), { timeout: 60_000 }).toBe(false);
    expect(logs.some((l) => l.event === "local_cli.cancelled" && l["pid"] === pid)).toBe(true);
    // Its provider call went with it.
    await up.waitForAbort(60_000);
  });
});
