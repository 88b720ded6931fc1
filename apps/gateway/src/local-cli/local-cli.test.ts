import { resolveLocalAgentRuntime } from "@bottlekit/local-agent-warning";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describePending } from "./bridge.ts";
import { ClaudeEventReader, claudeTurn, LocalCliRequestError } from "./claude.ts";
import { CodexEventReader, codexTurn } from "./codex.ts";
import { agentEnv, localCliConfig, parseRunAs } from "./process.ts";

const word = fc.string({ maxLength: 12, unit: fc.constantFrom(...'abc é"\\\n{}') });

/** A run of Claude Code's stream-json output: init, assistant messages, result. */
const claudeRun = fc.record({
  texts: fc.array(word, { minLength: 1, maxLength: 3 }),
  /** Per message: whether its text also came as partial deltas (--include-partial-messages). */
  partial: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  input: fc.nat({ max: 100_000 }),
  output: fc.nat({ max: 100_000 }),
  cacheRead: fc.nat({ max: 1000 }),
  cacheWrite: fc.nat({ max: 1000 }),
});

function claudeLines(r: {
  texts: string[];
  partial: boolean[];
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}): string {
  const lines: unknown[] = [{ type: "system", subtype: "init", tools: [] }];
  r.texts.forEach((t, i) => {
    if (r.partial[i]) {
      const half = Math.floor(t.length / 2);
      const ev = (event: unknown) => ({ type: "stream_event", event, parent_tool_use_id: null });
      lines.push(ev({ type: "message_start", message: { id: `msg_${i}`, model: "claude-x" } }));
      for (const piece of [t.slice(0, half), t.slice(half)])
        lines.push(
          ev({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: piece } }),
        );
    }
    // A sub-agent's message is never part of the answer.
    lines.push({
      type: "assistant",
      parent_tool_use_id: "toolu_task",
      message: { id: "msg_sub", content: [{ type: "text", text: "SUBAGENT" }] },
    });
    lines.push({
      type: "assistant",
      message: {
        id: `msg_${i}`,
        model: "claude-x",
        content: [
          { type: "tool_use", id: `t${i}`, name: "Read", input: {} },
          { type: "text", text: t },
        ],
      },
    });
  });
  lines.push({ type: "user", message: { role: "user", content: [] } });
  lines.push({
    type: "result",
    subtype: "success",
    is_error: false,
    result: r.texts.at(-1),
    usage: {
      input_tokens: r.input,
      output_tokens: r.output,
      cache_read_input_tokens: r.cacheRead,
      cache_creation_input_tokens: r.cacheWrite,
    },
  });
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
}

/** Cuts `text` at the given fractions (any split, as pipes deliver it). */
function split(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * text.length)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const i of at) {
    out.push(text.slice(prev, i));
    prev = i;
  }
  out.push(text.slice(prev));
  return out;
}

describe("Claude Code events → IR", () => {
  it("any split of a run gives its text, usage (cache counted in the input) and finish (property)", () => {
    fc.assert(
      fc.property(
        claudeRun,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        (run, cuts) => {
          const reader = new ClaudeEventReader();
          const events = split(claudeLines(run), cuts).flatMap((c) => reader.push(c));
          expect(reader.done).toBe(true);
          expect(events[0]).toMatchObject({ type: "start", id: "msg_0", model: "claude-x" });
          const text = events.map((e) => (e.type === "text" ? e.delta : "")).join("");
          expect(text).toBe(run.texts.join("\n\n"));
          expect(events.find((e) => e.type === "usage")).toMatchObject({
            usage: {
              input: run.input + run.cacheRead + run.cacheWrite,
              output: run.output,
            },
          });
          expect(events.at(-1)).toEqual({ type: "finish", finish: "stop" });
        },
      ),
    );
  });

  it("a failed run is an error; lines that are not JSON events are ignored, never thrown", () => {
    const reader = new ClaudeEventReader();
    const events = reader.push(
      'not json\n[1]\n{"type":"result","subtype":"error_max_turns","is_error":true,"usage":{"input_tokens":5,"output_tokens":1}}\n',
    );
    expect(events.map((e) => e.type)).toEqual(["start", "usage", "error"]);
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (junk) => {
        expect(() => new ClaudeEventReader().push(`${junk}\n`)).not.toThrow();
      }),
    );
  });
});

describe("codex exec --json events → IR", () => {
  it("agent messages are the text, turn.completed the usage; a reconnect notice is not an error", () => {
    const lines = [
      { type: "thread.started", thread_id: "0199-abc" },
      { type: "turn.started" },
      { type: "error", message: "Reconnecting... 1/5" },
      { type: "item.completed", item: { id: "i0", type: "reasoning", text: "thinking" } },
      { type: "item.completed", item: { id: "i1", type: "agent_message", text: "one" } },
      { type: "item.completed", item: { id: "i2", type: "command_execution", command: "ls" } },
      { type: "item.completed", item: { id: "i3", type: "agent_message", text: "two" } },
      {
        type: "turn.completed",
        usage: { input_tokens: 100, cached_input_tokens: 40, output_tokens: 7 },
      },
    ];
    const reader = new CodexEventReader();
    const events = split(
      `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`,
      [0.3, 0.31, 0.7],
    ).flatMap((c) => reader.push(c));
    expect(events).toEqual([
      { type: "start", id: "resp_0199-abc", model: "" },
      { type: "text", delta: "one" },
      { type: "text", delta: "\n\ntwo" },
      { type: "usage", usage: { input: 100, output: 7, cacheRead: 40 } },
      { type: "finish", finish: "stop" },
    ]);
    expect(reader.lastError).toBe("Reconnecting... 1/5");
    const failed = new CodexEventReader();
    expect(
      failed.push(`${JSON.stringify({ type: "turn.failed", error: { message: "quota" } })}\n`),
    ).toMatchObject([
      { type: "start" },
      { type: "error", message: expect.stringContaining("quota") },
    ]);
  });
});

describe("requests → a CLI turn", () => {
  it("Messages: the last user turn with the transcript before it; system to the prompt file", () => {
    const t = claudeTurn({
      model: "sonnet",
      max_tokens: 100,
      system: [{ type: "text", text: "be brief" }],
      messages: [
        { role: "user", content: "first" },
        { role: "assistant", content: [{ type: "text", text: "answer" }] },
        {
          role: "user",
          content: [
            { type: "text", text: "second" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } },
          ],
        },
      ],
      stream: true,
      tools: [],
      metadata: { user_id: "u" },
    });
    expect(t).toMatchObject({ model: "sonnet", system: "be brief", stream: true });
    const line = JSON.parse(t.stdin) as { type: string; message: { content: unknown[] } };
    expect(line.type).toBe("user");
    expect(line.message.content).toEqual([
      { type: "text", text: "The conversation so far:\n\nUser:" },
      { type: "text", text: "first" },
      { type: "text", text: "Assistant:" },
      { type: "text", text: "answer" },
      { type: "text", text: "Now the user says:" },
      { type: "text", text: "second" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } },
    ]);
    expect(t.stdin.endsWith("\n")).toBe(true);
    expect(t.stdin.split("\n").length).toBe(2);
  });

  it("what a local agent cannot be told is refused, naming the field", () => {
    const base = { model: "m", max_tokens: 1, messages: [{ role: "user", content: "hi" }] };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, tools: [{ name: "f", input_schema: {} }] }, /^tools: /],
      [{ ...base, temperature: 0.2 }, /^temperature: /],
      [{ ...base, messages: [{ role: "assistant", content: "x" }] }, /^messages\[0\]\.role: /],
      [
        {
          ...base,
          messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t" }] }],
        },
        /^messages\[0\]\.content\[0\]\.type: /,
      ],
    ];
    for (const [body, re] of cases) expect(() => claudeTurn(body)).toThrow(re);
    expect(() => codexTurn({ model: "m", input: "x", tools: [{ type: "function" }] })).toThrow(
      /^tools: /,
    );
    expect(() =>
      codexTurn({ model: "m", input: [{ type: "function_call_output", call_id: "c" }] }),
    ).toThrow(/^input\[0\]\.type: /);
    expect(() =>
      codexTurn({ model: "m", input: "x", text: { format: { type: "json_schema" } } }),
    ).toThrow(/^text\.format: /);
  });

  it("random request bodies never throw anything but a named refusal (property)", () => {
    const value = fc.oneof(
      fc.string({ maxLength: 5 }),
      fc.integer(),
      fc.constant(null),
      fc.array(
        fc.oneof(
          fc.string({ maxLength: 3 }),
          fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })),
        ),
        { maxLength: 3 },
      ),
    );
    const body = fc.dictionary(
      fc.constantFrom(
        "model",
        "messages",
        "system",
        "input",
        "instructions",
        "tools",
        "stream",
        "x",
      ),
      value,
    );
    fc.assert(
      fc.property(body, (b) => {
        for (const f of [claudeTurn, codexTurn]) {
          try {
            f(b);
          } catch (error) {
            expect(error).toBeInstanceOf(LocalCliRequestError);
          }
        }
      }),
    );
  });

  it("Responses: instructions, developer messages and the transcript become one prompt", () => {
    const t = codexTurn({
      model: "gpt-5-codex",
      instructions: "be brief",
      input: [
        { role: "developer", content: "no markdown" },
        { type: "message", role: "user", content: [{ type: "input_text", text: "a" }] },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "b" }] },
        { role: "user", content: "c" },
      ],
      store: false,
      reasoning: { effort: "low" },
    });
    expect(t.stdin).toBe(
      "Instructions:\nbe brief\n\nno markdown\n\nThe conversation so far:\n\nUser: a\n\nAssistant: b\n\nNow the user says: c",
    );
  });
});

describe("the agent's environment and account", () => {
  it("keeps locale, proxy and its vendor's variables; other providers' keys and the bridge's own never", () => {
    const env = agentEnv(
      {
        PATH: "/bin",
        LANG: "C.UTF-8",
        HTTPS_PROXY: "http://p",
        ANTHROPIC_API_KEY: "a",
        CLAUDE_CODE_X: "1",
        CLAUDE_CLI_RUN_AS: "nobody",
        OPENAI_API_KEY: "o",
        AWS_SECRET_ACCESS_KEY: "s",
        HOME: "/root",
      },
      ["ANTHROPIC_", "CLAUDE_"],
      "CLAUDE_CLI",
      "/home/agent",
    );
    expect(env).toEqual({
      PATH: "/bin",
      LANG: "C.UTF-8",
      HTTPS_PROXY: "http://p",
      ANTHROPIC_API_KEY: "a",
      CLAUDE_CODE_X: "1",
      HOME: "/home/agent",
    });
  });

  it("run-as: uid:gid, a uid, an account; a name that is no account is refused", () => {
    expect(parseRunAs("65534:65533")).toMatchObject({ uid: 65534, gid: 65533 });
    expect(parseRunAs("1234")).toMatchObject({ uid: 1234, gid: 1234 });
    expect(parseRunAs("root")).toMatchObject({ uid: 0 });
    expect(() => parseRunAs("no-such-account-bk")).toThrow(/does not exist/);
    expect(() => parseRunAs("a b;rm")).toThrow(/not an account name/);
  });

  it("what runs is the acknowledged runtime: tools, cwd, HOME and run-as as the acknowledgement normalised them", () => {
    const env = {
      PATH: "/nonexistent",
      CLAUDE_CLI_TOOLS: " Read, Bash Read ",
      CLAUDE_CLI_CWD: "work",
      CLAUDE_CLI_HOME: "/home/agent/",
      CLAUDE_CLI_RUN_AS: "65534:65534",
    };
    const runtime = resolveLocalAgentRuntime("claude-cli", { env, cwd: "/srv" });
    const config = localCliConfig("claude-cli", env, "CLAUDE_CLI", runtime);
    expect(config).toMatchObject({
      tools: "Bash,Read",
      cwd: "/srv/work",
      home: "/home/agent",
      runAs: { uid: 65534, gid: 65534 },
    });
    // Nothing set: no tools (Claude Code gets --tools ""), a private cwd and HOME, no account.
    const bare = localCliConfig("claude-cli", { PATH: "/nonexistent" }, "CLAUDE_CLI");
    expect(bare).toMatchObject({ tools: "", cwd: undefined, home: undefined, runAs: undefined });
  });

  it("a refusal names each change and the variable that makes it", () => {
    const runtime = resolveLocalAgentRuntime("codex-cli", { env: { PATH: "" } });
    const pending = {
      ...runtime,
      entries: [],
      previous: undefined,
      reasons: ["tools-changed", "cwd-changed", "home-changed", "run-as-changed"] as const,
    };
    expect(describePending({ ...pending, reasons: [...pending.reasons] }, "CODEX_CLI")).toBe(
      "the tools changed (CODEX_CLI_TOOLS), the working directory changed (CODEX_CLI_CWD), HOME changed (CODEX_CLI_HOME), the run-as account changed (CODEX_CLI_RUN_AS)",
    );
    expect(describePending(undefined, "CODEX_CLI")).toBe("no acknowledgement on this host");
  });
});
