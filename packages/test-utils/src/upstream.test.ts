import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFakeUpstream, type FakeUpstream } from "./upstream.ts";

let up: FakeUpstream;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  up = await createFakeUpstream({ requireKey: "sk-upstream-test" });
  openai = new OpenAI({ apiKey: "sk-upstream-test", baseURL: `${up.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: "sk-upstream-test", baseURL: up.url, maxRetries: 0 });
});
afterAll(() => up.close());
beforeEach(() => up.reset());

const weather = { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' };

describe("fake upstream: OpenAI chat completions", () => {
  it("answers JSON that the official client parses, with usage and tool calls", async () => {
    up.enqueue({ text: "Bonjour", toolCalls: [weather], usage: { input: 12, output: 7 } });
    const r = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "weather?" }],
    });
    expect(r.model).toBe("gpt-4o-mini");
    expect(r.choices[0]?.message.content).toBe("Bonjour");
    expect(r.choices[0]?.finish_reason).toBe("tool_calls");
    const call = r.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" ? call.function.arguments : "").toBe(weather.arguments);
    expect(r.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 });
    expect(up.requests[0]?.usage).toMatchObject({ input: 12, output: 7 });
  });

  it("streams chunks, tool-call deltas and a usage chunk only when asked", async () => {
    up.enqueue({ text: "one two three", toolCalls: [weather], usage: { input: 5, output: 9 } });
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let args = "";
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("one two three");
    expect(args).toBe(weather.arguments);
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 9 });

    const raw = await fetch(`${up.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer sk-upstream-test", "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [], stream: true }),
    }).then((res) => res.text());
    expect(raw).not.toContain('"usage"');
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(up.requests[1]?.usage).toBeUndefined();
  });

  it("refuses a wrong key with a 401 in OpenAI's error shape", async () => {
    const bad = new OpenAI({ apiKey: "nope", baseURL: `${up.url}/v1`, maxRetries: 0 });
    await expect(
      bad.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
  });
});

describe("fake upstream: OpenAI responses", () => {
  it("answers JSON with output_text and usage", async () => {
    up.enqueue({ text: "Hi there", usage: { input: 3, output: 2, reasoning: 1 } });
    const r = await openai.responses.create({ model: "gpt-5", input: "hello" });
    expect(r.output_text).toBe("Hi there");
    expect(r.usage).toMatchObject({ input_tokens: 3, output_tokens: 2, total_tokens: 5 });
  });

  it("streams typed events ending in response.completed with usage", async () => {
    up.enqueue({ text: "a b c", toolCalls: [weather], usage: { input: 4, output: 6 } });
    const stream = await openai.responses.create({ model: "gpt-5", input: "hi", stream: true });
    const types: string[] = [];
    let text = "";
    let completedUsage: unknown;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") text += ev.delta;
      if (ev.type === "response.completed") completedUsage = ev.response.usage;
    }
    expect(text).toBe("a b c");
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.function_call_arguments.delta");
    expect(types.at(-1)).toBe("response.completed");
    expect(completedUsage).toMatchObject({ input_tokens: 4, output_tokens: 6 });
  });
});

describe("fake upstream: Anthropic messages", () => {
  it("answers JSON with content blocks, tool_use and usage", async () => {
    up.enqueue({
      text: "Sure",
      toolCalls: [weather],
      usage: { input: 20, output: 11, cacheRead: 3 },
    });
    const m = await anthropic.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: [{ role: "user", content: "weather?" }],
    });
    expect(m.content[0]).toMatchObject({ type: "text", text: "Sure" });
    expect(m.content[1]).toMatchObject({
      type: "tool_use",
      name: "get_weather",
      input: { city: "Paris" },
    });
    expect(m.stop_reason).toBe("tool_use");
    expect(m.usage).toMatchObject({
      input_tokens: 20,
      output_tokens: 11,
      cache_read_input_tokens: 3,
    });
  });

  it("streams events that the official client assembles into the final message", async () => {
    up.enqueue({ text: "x y z", toolCalls: [weather], usage: { input: 8, output: 13 } });
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: [{ role: "user", content: "hi" }],
    });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: "text", text: "x y z" });
    expect(final.content[1]).toMatchObject({
      type: "tool_use",
      input: { city: "Paris", unit: "celsius" },
    });
    expect(final.usage).toMatchObject({ input_tokens: 8, output_tokens: 13 });
  });
});

describe("fake upstream: faults", () => {
  it("answers a 5xx in the API's error shape", async () => {
    up.enqueue({ fault: { kind: "status", status: 529, message: "overloaded" } });
    await expect(
      anthropic.messages.create({
        model: "c",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toMatchObject({
      status: 529,
      error: { type: "error", error: { type: "overloaded_error" } },
    });
  });

  it("resets the connection", async () => {
    up.enqueue({ fault: { kind: "reset" } });
    await expect(
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toThrow(/Connection error/);
  });

  it("times out: holds the request until the client gives up, and records the abort", async () => {
    up.enqueue({ fault: { kind: "timeout" } });
    const impatient = new OpenAI({
      apiKey: "sk-upstream-test",
      baseURL: `${up.url}/v1`,
      maxRetries: 0,
      timeout: 200,
    });
    await expect(
      impatient.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toThrow(/timed out/i);
    const aborted = await up.waitForAbort(60_000);
    expect(aborted.aborted).toBe(true);
  });

  it("truncates a stream mid-way", async () => {
    up.enqueue({ text: "a b c d e f", fault: { kind: "truncate", afterFrames: 3 } });
    const stream = await openai.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? "");
      })(),
    ).rejects.toThrow();
    expect(seen.join("").length).toBeLessThan("a b c d e f".length);
  });
});
