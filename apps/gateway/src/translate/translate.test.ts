import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatStreamWriter } from "./chat.ts";
import {
  createStreamTranslator,
  type IrEvent,
  type IrRequest,
  readRequest,
  TranslationError,
  translateRequest,
  translateRequestWithContext,
  translateResponse,
  type WireApi,
  writeRequest,
  writeResponse,
} from "./index.ts";
import { MessagesStreamWriter } from "./messages.ts";
import { ResponsesStreamWriter } from "./responses.ts";

const APIS: WireApi[] = ["openai-chat", "openai-responses", "anthropic-messages"];

// --- generators ------------------------------------------------------------------------------

const word = fc.string({
  minLength: 1,
  maxLength: 12,
  unit: fc.constantFrom(...'abcdefghij klmnoé"\\\n{}'),
});
const ident = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom(..."abcdefgh_") });
const callId = fc
  .string({ minLength: 3, maxLength: 10, unit: fc.constantFrom(..."abcdef0123") })
  .map((s) => `call_${s}`);
const argsJson = fc
  .dictionary(ident, fc.oneof(fc.integer(), word), { maxKeys: 3 })
  .map((o) => JSON.stringify(o));

/** A conversation every API can express: alternating turns, tool calls answered in the next user turn. */
const irRequest: fc.Arbitrary<IrRequest> = fc
  .record({
    system: fc.array(word, { maxLength: 1 }),
    turns: fc.array(
      fc.record({
        user: word,
        calls: fc.array(fc.record({ id: callId, name: ident, args: argsJson, result: word }), {
          maxLength: 2,
        }),
        answer: word,
      }),
      { minLength: 1, maxLength: 3 },
    ),
    tools: fc.uniqueArray(ident, { maxLength: 2 }),
    maxTokens: fc.integer({ min: 1, max: 100_000 }),
    temperature: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  })
  .map(({ system, turns, tools, maxTokens, temperature }) => {
    const messages: IrRequest["messages"] = [];
    const seen = new Set<string>();
    for (const t of turns) {
      const calls = t.calls.filter((c) => {
        if (seen.has(c.id)) return false;
        seen.add(c.id);
        return true;
      });
      messages.push({ role: "user", parts: [{ type: "text", text: t.user }] });
      messages.push({
        role: "assistant",
        parts: [
          { type: "text", text: t.answer },
          ...calls.map((c) => ({
            type: "tool_call" as const,
            id: c.id,
            name: c.name,
            arguments: c.args,
          })),
        ],
      });
      if (calls.length)
        messages.push({
          role: "user",
          parts: calls.map((c) => ({ type: "tool_result" as const, id: c.id, content: c.result })),
        });
    }
    if (messages.at(-1)?.role === "assistant")
      messages.push({ role: "user", parts: [{ type: "text", text: "go on" }] });
    return {
      model: "m",
      system,
      messages,
      tools: tools.map((name) => ({
        name,
        description: `tool ${name}`,
        parameters: { type: "object", properties: {} },
      })),
      maxTokens,
      ...(temperature !== undefined ? { temperature } : {}),
      stream: false,
    };
  });

/** What must survive a translation: system text, each turn's text, tool calls and results. */
function essence(ir: IrRequest) {
  const merged: { role: string; parts: unknown[] }[] = [];
  for (const m of ir.messages) {
    const parts = m.parts
      .filter((p) => p.type !== "thinking")
      .map((p) =>
        p.type === "tool_call" ? { ...p, arguments: JSON.parse(p.arguments || "{}") } : p,
      )
      .sort((a, b) => (a.type === "tool_result" ? -1 : 0) - (b.type === "tool_result" ? -1 : 0));
    const last = merged.at(-1);
    if (last?.role === m.role) last.parts.push(...parts);
    else merged.push({ role: m.role, parts });
  }
  // adjacent text parts are one text to every API
  for (const m of merged) {
    const out: unknown[] = [];
    for (const p of m.parts as { type: string; text?: string }[]) {
      const prev = out.at(-1) as { type: string; text?: string } | undefined;
      if (p.type === "text" && prev?.type === "text") prev.text = `${prev.text}${p.text}`;
      else out.push({ ...p });
    }
    m.parts = out;
  }
  return {
    system: ir.system.join("\n\n"),
    messages: merged,
    tools: ir.tools.map((t) => t.name),
    maxTokens: ir.maxTokens,
    temperature: ir.temperature,
  };
}

describe("request translation", () => {
  it("A → B → A keeps the conversation, tools and settings (property)", () => {
    fc.assert(
      fc.property(irRequest, fc.constantFrom(...APIS), fc.constantFrom(...APIS), (ir, a, b) => {
        const inA = writeRequest(a, ir);
        const inB = translateRequest(a, b, inA);
        const back = readRequest(a, translateRequest(b, a, inB));
        expect(essence(back)).toEqual(essence(readRequest(a, inA)));
        expect(essence(readRequest(b, inB))).toEqual(essence(ir));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what the target cannot express, naming the field", () => {
    const chat = { model: "m", messages: [{ role: "user", content: "hi" }], logprobs: true };
    expect(() => translateRequest("openai-chat", "anthropic-messages", chat)).toThrow(
      TranslationError,
    );
    expect(() => translateRequest("openai-chat", "anthropic-messages", chat)).toThrow(
      /^logprobs: /,
    );
    const msgs = {
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "web_search_20250305", name: "web_search" }],
    };
    expect(() => translateRequest("anthropic-messages", "openai-chat", msgs)).toThrow(
      /^tools\[0\]\.type: /,
    );
    const resp = { model: "m", input: "hi", tools: [{ type: "file_search" }] };
    expect(() => translateRequest("openai-responses", "anthropic-messages", resp)).toThrow(
      /^tools\[0\]\.type/,
    );
    const stop = { model: "m", messages: [{ role: "user", content: "hi" }], stop: ["END"] };
    expect(() => translateRequest("openai-chat", "openai-responses", stop)).toThrow(/^stop: /);
  });

  it("Anthropic gets the output cap it requires, tool results first in their turn", () => {
    const body = translateRequest(
      "openai-chat",
      "anthropic-messages",
      {
        model: "m",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "weather?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "w", arguments: '{"city":"Oslo"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "rain" },
        ],
        tools: [{ type: "function", function: { name: "w", parameters: { type: "object" } } }],
        parallel_tool_calls: false,
      },
      { defaultMaxTokens: 777 },
    );
    expect(body).toMatchObject({
      max_tokens: 777,
      system: "be brief",
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
      messages: [
        { role: "user", content: [{ type: "text", text: "weather?" }] },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "call_1", name: "w", input: { city: "Oslo" } }],
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "call_1", content: "rain" }],
        },
      ],
    });
  });
});

describe("response translation", () => {
  it("usage and stop reasons carry over; Anthropic cache reads are counted in the input", () => {
    const fromAnthropic = translateResponse("anthropic-messages", "openai-chat", {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude",
      content: [
        { type: "text", text: "hi" },
        { type: "tool_use", id: "toolu_1", name: "t", input: { a: 1 } },
      ],
      stop_reason: "tool_use",
      usage: {
        input_tokens: 10,
        output_tokens: 5,
        cache_read_input_tokens: 90,
        cache_creation_input_tokens: 0,
      },
    });
    expect(fromAnthropic).toMatchObject({
      choices: [
        {
          finish_reason: "tool_calls",
          message: {
            content: "hi",
            tool_calls: [{ id: "toolu_1", function: { name: "t", arguments: '{"a":1}' } }],
          },
        },
      ],
      usage: {
        prompt_tokens: 100,
        completion_tokens: 5,
        prompt_tokens_details: { cached_tokens: 90 },
      },
    });
    const back = translateResponse("openai-chat", "anthropic-messages", fromAnthropic);
    expect(back).toMatchObject({
      stop_reason: "tool_use",
      usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 90 },
    });
  });
});

// --- streams, parsed by the official SDKs ----------------------------------------------------

let server: Server;
let base = "";
let body = "";
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

interface Content {
  text: string;
  calls: { id: string; name: string; args: unknown }[];
  usage: { input: number; output: number };
}

const irStream = fc
  .record({
    texts: fc.array(word, { minLength: 1, maxLength: 4 }),
    calls: fc.array(fc.record({ id: callId, name: ident, args: argsJson }), { maxLength: 2 }),
    input: fc.integer({ min: 1, max: 10_000 }),
    output: fc.integer({ min: 1, max: 10_000 }),
  })
  .map(({ texts, calls, input, output }) => {
    const uniq = calls.filter((c, i) => calls.findIndex((d) => d.id === c.id) === i);
    const events: IrEvent[] = [{ type: "start", id: "x1", model: "m", usage: { input } }];
    for (const t of texts) events.push({ type: "text", delta: t });
    uniq.forEach((c, i) => {
      events.push({ type: "tool_start", index: i, id: c.id, name: c.name });
      const half = Math.floor(c.args.length / 2);
      events.push({ type: "tool_args", index: i, delta: c.args.slice(0, half) });
      events.push({ type: "tool_args", index: i, delta: c.args.slice(half) });
    });
    events.push({ type: "usage", usage: { input, output } });
    events.push({ type: "finish", finish: uniq.length ? "tool_calls" : "stop" });
    const expected: Content = {
      text: texts.join(""),
      calls: uniq.map((c) => ({ id: c.id, name: c.name, args: JSON.parse(c.args) })),
      usage: { input, output },
    };
    return { events, expected };
  });

function upstreamBody(api: WireApi, events: IrEvent[]): string {
  const w =
    api === "openai-chat"
      ? new ChatStreamWriter(true)
      : api === "openai-responses"
        ? new ResponsesStreamWriter()
        : new MessagesStreamWriter();
  return events.map((e) => w.write(e)).join("") + w.end();
}

async function parseWithSdk(api: WireApi, sse: string): Promise<Content> {
  body = sse;
  if (api === "openai-chat") {
    const client = new OpenAI({ apiKey: "x", baseURL: base, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [],
      stream: true,
      stream_options: { include_usage: true },
    });
    const out: Content = { text: "", calls: [], usage: { input: 0, output: 0 } };
    const args: string[] = [];
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        out.text += c.delta.content ?? "";
        for (const tc of c.delta.tool_calls ?? []) {
          if (tc.id) out.calls[tc.index] = { id: tc.id, name: tc.function?.name ?? "", args: {} };
          args[tc.index] = (args[tc.index] ?? "") + (tc.function?.arguments ?? "");
        }
      }
      if (chunk.usage)
        out.usage = { input: chunk.usage.prompt_tokens, output: chunk.usage.completion_tokens };
    }
    out.calls.forEach((c, i) => {
      c.args = JSON.parse(args[i] || "{}");
    });
    return out;
  }
  if (api === "anthropic-messages") {
    const client = new Anthropic({ apiKey: "x", baseURL: base, maxRetries: 0 });
    const msg = await client.messages
      .stream({ model: "m", max_tokens: 10, messages: [] })
      .finalMessage();
    return {
      text: msg.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join(""),
      calls: msg.content.flatMap((b) =>
        b.type === "tool_use" ? [{ id: b.id, name: b.name, args: b.input }] : [],
      ),
      usage: {
        input:
          msg.usage.input_tokens +
          (msg.usage.cache_read_input_tokens ?? 0) +
          (msg.usage.cache_creation_input_tokens ?? 0),
        output: msg.usage.output_tokens,
      },
    };
  }
  const client = new OpenAI({ apiKey: "x", baseURL: base, maxRetries: 0 });
  const res = await client.responses.stream({ model: "m", input: "x" }).finalResponse();
  return {
    text: res.output
      .flatMap((o) => (o.type === "message" ? o.content : []))
      .map((c) => (c.type === "output_text" ? c.text : ""))
      .join(""),
    calls: res.output.flatMap((o) =>
      o.type === "function_call"
        ? [{ id: o.call_id, name: o.name, args: JSON.parse(o.arguments || "{}") }]
        : [],
    ),
    usage: { input: res.usage?.input_tokens ?? 0, output: res.usage?.output_tokens ?? 0 },
  };
}

describe("stream translation, parsed by the client's official SDK", () => {
  for (const from of APIS)
    for (const to of APIS)
      it(`${from} → ${to}: the same text, tool calls and usage (property)`, async () => {
        await fc.assert(
          fc.asyncProperty(
            irStream,
            fc.integer({ min: 1, max: 64 }),
            async ({ events, expected }, cut) => {
              const upstream = upstreamBody(from, events);
              const t = createStreamTranslator(from, to, { includeUsage: true });
              let client = "";
              // the upstream's bytes arrive in arbitrary pieces
              for (let i = 0; i < upstream.length; i += cut)
                client += t.push(upstream.slice(i, i + cut));
              client += t.end();
              expect(await parseWithSdk(to, client)).toEqual(expected);
            },
          ),
          { numRuns: 25 },
        );
      });
});

describe("Responses text.format", () => {
  it("a structured-output format is refused, naming the field; plain text and verbosity pass", () => {
    const base = { model: "m", input: "hi" };
    expect(() =>
      translateRequest("openai-responses", "anthropic-messages", {
        ...base,
        text: { format: { type: "json_schema", name: "x", schema: {} } },
      }),
    ).toThrow(/^text\.format: /);
    expect(() =>
      translateRequest("openai-responses", "anthropic-messages", {
        ...base,
        text: { format: { type: "text" }, verbosity: "low" },
      }),
    ).not.toThrow();
  });
});

describe("Responses namespace tools (Codex) on a model without namespaces", () => {
  const codexLike = {
    model: "m",
    input: [
      { type: "message", role: "user", content: [{ type: "input_text", text: "spawn" }] },
      {
        type: "function_call",
        call_id: "call_1",
        namespace: "multi_agent_v1",
        name: "spawn_agent",
        arguments: '{"task":"x"}',
      },
      { type: "function_call_output", call_id: "call_1", output: "agent a1" },
    ],
    tools: [
      { type: "function", name: "exec_command", parameters: { type: "object", properties: {} } },
      {
        type: "namespace",
        name: "multi_agent_v1",
        description: "Tools for sub-agents.",
        tools: [
          {
            type: "function",
            name: "spawn_agent",
            description: "Spawn one.",
            parameters: { type: "object", properties: { task: { type: "string" } } },
          },
          { type: "function", name: "close_agent", parameters: { type: "object" } },
        ],
      },
    ],
    tool_choice: "auto",
  };

  it("flattens a namespace's function tools and the history's namespaced calls", () => {
    for (const to of ["anthropic-messages", "openai-chat"] as const) {
      const { body, context } = translateRequestWithContext("openai-responses", to, codexLike);
      const names = JSON.stringify(body);
      expect(names).toContain('"multi_agent_v1__spawn_agent"');
      expect(names).toContain('"multi_agent_v1__close_agent"');
      expect(names).toContain("Tools for sub-agents.");
      expect([...context.toolNames.keys()].sort()).toEqual([
        "multi_agent_v1__close_agent",
        "multi_agent_v1__spawn_agent",
      ]);
      const ir = readRequest(to, body);
      expect(ir.tools.map((t) => t.name)).toEqual([
        "exec_command",
        "multi_agent_v1__spawn_agent",
        "multi_agent_v1__close_agent",
      ]);
      const call = ir.messages.flatMap((m) => m.parts).find((p) => p.type === "tool_call");
      expect(call).toMatchObject({ id: "call_1", name: "multi_agent_v1__spawn_agent" });
    }
  });

  it("a call the model makes to a flattened tool goes back under its namespace (JSON and stream)", () => {
    const { context } = translateRequestWithContext(
      "openai-responses",
      "anthropic-messages",
      codexLike,
    );
    const answer = {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude",
      content: [
        { type: "tool_use", id: "toolu_1", name: "multi_agent_v1__close_agent", input: {} },
        { type: "tool_use", id: "toolu_2", name: "exec_command", input: { cmd: "ls" } },
      ],
      stop_reason: "tool_use",
      usage: { input_tokens: 5, output_tokens: 2 },
    };
    const out = translateResponse("anthropic-messages", "openai-responses", answer, context);
    const calls = (out["output"] as Record<string, unknown>[]).filter(
      (o) => o["type"] === "function_call",
    );
    expect(calls.map((c) => [c["namespace"], c["name"]])).toEqual([
      ["multi_agent_v1", "close_agent"],
      [undefined, "exec_command"],
    ]);
    // Without the request's context, the flat name is all there is.
    const bare = translateResponse("anthropic-messages", "openai-responses", answer);
    expect(JSON.stringify(bare)).toContain('"name":"multi_agent_v1__close_agent"');

    const t = createStreamTranslator("anthropic-messages", "openai-responses", { context });
    const sse = [
      {
        type: "message_start",
        message: { id: "msg_1", model: "claude", usage: { input_tokens: 5, output_tokens: 0 } },
      },
      {
        type: "content_block_start",
        index: 0,
        content_block: {
          type: "tool_use",
          id: "toolu_1",
          name: "multi_agent_v1__close_agent",
          input: {},
        },
      },
      {
        type: "content_block_delta",
        index: 0,
        delta: { type: "input_json_delta", partial_json: "{}" },
      },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 2 } },
      { type: "message_stop" },
    ]
      .map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
      .join("");
    const text = t.push(sse) + t.end();
    const done = text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
      .filter((e) => e["type"] === "response.output_item.done");
    expect(done.map((e) => e["item"])).toMatchObject([
      {
        type: "function_call",
        call_id: "toolu_1",
        namespace: "multi_agent_v1",
        name: "close_agent",
      },
    ]);
  });

  it("refuses what only OpenAI can run, naming the field and the fix", () => {
    const withSearch = { ...codexLike, tools: [...codexLike.tools, { type: "web_search" }] };
    expect(() => translateRequest("openai-responses", "anthropic-messages", withSearch)).toThrow(
      /^tools\[2\]\.type: .*web_search = "disabled"/,
    );
    const nsHosted = {
      ...codexLike,
      tools: [{ type: "namespace", name: "n", tools: [{ type: "file_search" }] }],
    };
    expect(() => translateRequest("openai-responses", "openai-chat", nsHosted)).toThrow(
      /^tools\[0\]\.tools\[0\]\.type: /,
    );
    const clash = {
      ...codexLike,
      tools: [
        { type: "function", name: "a__b" },
        { type: "namespace", name: "a", tools: [{ type: "function", name: "b" }] },
      ],
    };
    expect(() => translateRequest("openai-responses", "openai-chat", clash)).toThrow(
      /^tools\[1\]\.tools\[0\]\.name: two tools/,
    );
    const long = {
      ...codexLike,
      tools: [
        {
          type: "namespace",
          name: "n".repeat(40),
          tools: [{ type: "function", name: "t".repeat(30) }],
        },
      ],
    };
    expect(() => translateRequest("openai-responses", "openai-chat", long)).toThrow(
      /^tools\[0\]\.tools\[0\]\.name: .*64 characters/,
    );
  });
});

describe("namespaced tools round trip (property)", () => {
  const name = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom(..."abcxyz_-19") });
  it("Responses → B → a B tool call → Responses: every call comes back under its own namespace", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(name, { minLength: 1, maxLength: 3 }),
        fc.uniqueArray(name, { minLength: 1, maxLength: 3 }),
        fc.uniqueArray(name, { maxLength: 2 }),
        fc.constantFrom("openai-chat" as const, "anthropic-messages" as const),
        (namespaces, inner, plain, to) => {
          const tools = [
            ...plain.map((n) => ({
              type: "function",
              name: `p${n}`,
              parameters: { type: "object" },
            })),
            ...namespaces.map((ns) => ({
              type: "namespace",
              name: ns,
              tools: inner.map((n) => ({
                type: "function",
                name: n,
                parameters: { type: "object" },
              })),
            })),
          ];
          let translated: ReturnType<typeof translateRequestWithContext>;
          try {
            translated = translateRequestWithContext("openai-responses", to, {
              model: "m",
              input: "x",
              tools,
            });
          } catch (error) {
            // Only a clash of flat names may be refused (e.g. namespace "a_" + "_b" vs "a" + "__b").
            expect(error).toBeInstanceOf(TranslationError);
            expect((error as TranslationError).message).toMatch(/two tools are called/);
            return;
          }
          const flat = readRequest(to, translated.body).tools.map((t) => t.name);
          const expected = [
            ...plain.map((n) => ({ name: `p${n}` })),
            ...namespaces.flatMap((ns) => inner.map((n) => ({ namespace: ns, name: n }))),
          ];
          expect(flat.length).toBe(expected.length);
          const answer = translateResponse(
            to,
            "openai-responses",
            writeResponse(to, {
              id: "r1",
              model: "m",
              parts: flat.map((n, i) => ({
                type: "tool_call",
                id: `c${i}`,
                name: n,
                arguments: "{}",
              })),
              finish: "tool_calls",
              usage: { input: 1, output: 1 },
            }),
            translated.context,
          );
          const calls = (answer["output"] as Record<string, unknown>[])
            .filter((o) => o["type"] === "function_call")
            .map((o) =>
              o["namespace"] === undefined
                ? { name: o["name"] }
                : { namespace: o["namespace"], name: o["name"] },
            );
          expect(calls).toEqual(expected);
        },
      ),
    );
  });
});
