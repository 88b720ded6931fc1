import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ANTHROPIC_KEY, type Harness, OPENAI_KEY, startHarness } from "./helpers.ts";

// The official SDKs against the real gateway on loopback, in front of fake upstreams that speak
// each wire format exactly. Every call is checked end to end: what the client sees, what the
// upstream received (injected key, upstream model id), and what the ledger recorded.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => {
  h.up.reset();
  h.anthropicUp.reset();
});

const weather = { name: "get_weather", arguments: '{"city":"Paris"}' };

async function lastEvent() {
  const events = await h.store.events();
  return events.at(-1);
}

describe("OpenAI chat completions", () => {
  it("non-streamed: answer, tool calls, injected key, upstream model id, usage recorded as reported", async () => {
    h.up.enqueue({
      text: "Hi",
      toolCalls: [weather],
      usage: { input: 17, output: 9, cacheRead: 2 },
    });
    const r = await h.openai().chat.completions.create({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [
        { type: "function", function: { name: "get_weather", parameters: { type: "object" } } },
      ],
    });
    expect(r.choices[0]?.message.content).toBe("Hi");
    const call = r.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.arguments).toBe(weather.arguments);
    expect(r.usage?.prompt_tokens).toBe(17);
    const seen = h.up.requests[0];
    expect(seen?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect((seen?.body as { model?: string } | undefined)?.model).toBe("gpt-4o-mini");
    const ev = await lastEvent();
    expect(ev).toMatchObject({
      bottle: "default",
      provider: "openai",
      model: "gpt-4o-mini",
      inputTokens: 17,
      outputTokens: 9,
      cacheReadTokens: 2,
      usageMissing: false,
    });
  });

  it("streamed without include_usage: the gateway asks upstream for usage and strips it for the client", async () => {
    h.up.enqueue({ text: "one two three", usage: { input: 11, output: 3 } });
    const stream = await h.openai().chat.completions.create({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "count" }],
      stream: true,
    });
    let text = "";
    const keys = new Set<string>();
    let usageChunks = 0;
    for await (const c of stream) {
      for (const k of Object.keys(c)) keys.add(k);
      if (c.usage) usageChunks++;
      text += c.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe("one two three");
    expect(usageChunks).toBe(0);
    expect(keys.has("usage")).toBe(false);
    const sent = h.up.requests[0]?.body as { stream_options?: { include_usage?: boolean } };
    expect(sent.stream_options?.include_usage).toBe(true);
    expect(await lastEvent()).toMatchObject({
      inputTokens: 11,
      outputTokens: 3,
      usageMissing: false,
    });
  });

  it("streamed with include_usage: the client gets the usage chunk, the ledger the same numbers", async () => {
    h.up.enqueue({ text: "a b", toolCalls: [weather], usage: { input: 5, output: 8 } });
    const stream = await h.openai().chat.completions.create({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    let args = "";
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
    }
    expect(args).toBe(weather.arguments);
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 8 });
    expect(await lastEvent()).toMatchObject({ inputTokens: 5, outputTokens: 8 });
  });
});

describe("OpenAI responses", () => {
  it("non-streamed", async () => {
    h.up.enqueue({ text: "Bonjour", usage: { input: 6, output: 4, reasoning: 1 } });
    const r = await h.openai().responses.create({ model: "openai/gpt-5", input: "hello" });
    expect(r.output_text).toBe("Bonjour");
    expect(h.up.requests[0]?.path).toBe("/v1/responses");
    expect(await lastEvent()).toMatchObject({
      provider: "openai",
      inputTokens: 6,
      outputTokens: 4,
      reasoningTokens: 1,
    });
  });

  it("streamed, with a function call", async () => {
    h.up.enqueue({ text: "x y", toolCalls: [weather], usage: { input: 9, output: 12 } });
    const stream = await h
      .openai()
      .responses.create({ model: "openai/gpt-5", input: "hi", stream: true });
    let text = "";
    let last = "";
    for await (const ev of stream) {
      if (ev.type === "response.output_text.delta") text += ev.delta;
      last = ev.type;
    }
    expect(text).toBe("x y");
    expect(last).toBe("response.completed");
    expect(await lastEvent()).toMatchObject({
      inputTokens: 9,
      outputTokens: 12,
      usageMissing: false,
    });
  });
});

describe("Anthropic messages", () => {
  it("non-streamed, x-api-key injected", async () => {
    h.anthropicUp.enqueue({
      text: "Sure",
      toolCalls: [weather],
      usage: { input: 21, output: 13, cacheWrite: 4 },
    });
    const m = await h.anthropic().messages.create({
      model: "anthropic/claude-sonnet-4-5",
      max_tokens: 200,
      messages: [{ role: "user", content: "weather?" }],
    });
    expect(m.content[0]).toMatchObject({ type: "text", text: "Sure" });
    expect(m.content[1]).toMatchObject({ type: "tool_use", input: { city: "Paris" } });
    const seen = h.anthropicUp.requests[0];
    expect(seen?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    expect(seen?.headers["anthropic-version"]).toBeDefined();
    expect((seen?.body as { model?: string } | undefined)?.model).toBe("claude-sonnet-4-5");
    expect(await lastEvent()).toMatchObject({
      provider: "anthropic",
      // normalized by provider-registry: Anthropic's input_tokens plus cache reads and writes
      inputTokens: 25,
      outputTokens: 13,
      cacheWriteTokens: 4,
    });
  });

  it("streamed: the SDK assembles the final message; usage from message_start + message_delta", async () => {
    h.anthropicUp.enqueue({ text: "p q r", toolCalls: [weather], usage: { input: 30, output: 7 } });
    const final = await h
      .anthropic()
      .messages.stream({
        model: "anthropic/claude-sonnet-4-5",
        max_tokens: 100,
        messages: [{ role: "user", content: "x" }],
      })
      .finalMessage();
    expect(final.content[0]).toMatchObject({ type: "text", text: "p q r" });
    expect(final.usage).toMatchObject({ input_tokens: 30, output_tokens: 7 });
    expect(await lastEvent()).toMatchObject({
      inputTokens: 30,
      outputTokens: 7,
      usageMissing: false,
    });
  });

  it("an OpenAI-only model called through /v1/messages is translated to Chat Completions (see translate.test.ts)", async () => {
    h.up.enqueue({ text: "ok", usage: { input: 3, output: 1 } });
    const m = await h.anthropic().messages.create({
      model: "openai/gpt-4o-mini",
      max_tokens: 5,
      messages: [{ role: "user", content: "x" }],
    });
    expect(m.content[0]).toMatchObject({ type: "text", text: "ok" });
    expect(h.up.requests[0]?.api).toBe("openai-chat");
  });
});

describe("discovery and health", () => {
  it("GET /healthz, /v1/models and /metrics", async () => {
    const health = await fetch(`${h.gw.url}/healthz`).then((r) => r.json());
    expect(health).toMatchObject({ status: "ok" });
    const models = (await fetch(`${h.gw.url}/v1/models`).then((r) => r.json())) as {
      data: { id: string; owned_by: string }[];
    };
    // routable = catalog models of the two configured wildcard providers, nothing else
    expect(models.data.some((m) => m.id.startsWith("openai/gpt-"))).toBe(true);
    expect(models.data.some((m) => m.id.startsWith("anthropic/claude-"))).toBe(true);
    expect(new Set(models.data.map((m) => m.owned_by))).toEqual(new Set(["openai", "anthropic"]));
    await h.openai().chat.completions.create({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "m" }],
    });
    const metrics = await fetch(`${h.gw.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(
      /bottlekit_gateway_requests_total\{endpoint="\/v1\/chat\/completions",status="200",provider="openai"\} \d+/,
    );
    expect(metrics).toMatch(
      /bottlekit_gateway_tokens_total\{provider="openai",model="gpt-4o-mini",kind="input"\} \d+/,
    );
    expect(metrics).toContain("bottlekit_gateway_request_duration_seconds_bucket");
    expect(metrics).toContain("bottlekit_gateway_upstream_duration_seconds_count");
  });

  it("unknown paths answer 404 in a JSON error shape", async () => {
    const r = await fetch(`${h.gw.url}/v1/nope`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });
});

describe("request validation", () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${h.gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });

  it("invalid JSON → 400 in the API's shape; the upstream is not called", async () => {
    const r = await post("/v1/messages", "{not json");
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error" },
    });
    expect(h.anthropicUp.requests.length).toBe(0);
  });

  it("missing model, or Anthropic without max_tokens → 400 naming the key", async () => {
    const a = await post("/v1/chat/completions", JSON.stringify({ messages: [] }));
    expect(a.status).toBe(400);
    expect(((await a.json()) as { error: { message: string } }).error.message).toMatch(/^model:/);
    const b = await post(
      "/v1/messages",
      JSON.stringify({ model: "anthropic/claude-sonnet-4-5", messages: [] }),
    );
    expect(((await b.json()) as { error: { message: string } }).error.message).toMatch(
      /^max_tokens:/,
    );
  });

  it("unknown model → 404 not_found_error", async () => {
    await expect(
      h.openai().chat.completions.create({
        model: "nosuchprovider/whatever",
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toMatchObject({ status: 404, type: "not_found_error" });
  });

  it("GET on an LLM endpoint → 405", async () => {
    const r = await fetch(`${h.gw.url}/v1/chat/completions`);
    expect(r.status).toBe(405);
  });
});
