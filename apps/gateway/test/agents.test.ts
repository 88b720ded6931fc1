/**
 * What real agents and the newest SDKs do to the gateway (issue 13): clients that close right
 * after the terminal event, output caps far above the budget, retries, upstream retry hints and
 * client mistakes in numbers. Each case runs through the official SDKs where they exercise it
 * (openai 6.x and 7.x, @anthropic-ai/sdk), and through raw fetch where a client's exact timing
 * matters (Codex closes its connection right after `response.completed`).
 */
import Anthropic from "@anthropic-ai/sdk";
import { createFakeUpstream } from "@bottlekit/test-utils";
import OpenAI from "openai";
import OpenAI7 from "openai7";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.ts";

const CHAT = "openai/gpt-4o-mini";
const CLAUDE = "anthropic/claude-sonnet-4-5";

function openai7(h: Harness, maxRetries = 0): OpenAI7 {
  return new OpenAI7({ apiKey: "local-unused", baseURL: `${h.gw.url}/v1`, maxRetries });
}

/** The ledger event of the n-th most recent call, once settled. */
async function settledEvents(h: Harness, count: number) {
  await expect.poll(async () => (await h.store.events()).length, { timeout: 60_000 }).toBe(count);
  return h.store.events();
}

/**
 * Streams a request with fetch and closes the connection as soon as `terminal` appears in the
 * body (as Codex does after `response.completed` and openai 7.x after `[DONE]`).
 */
async function readUntilThenClose(url: string, body: unknown, terminal: string): Promise<string> {
  const ac = new AbortController();
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.includes(terminal)) break;
  }
  ac.abort();
  return text;
}

describe("item 1: usage read from the terminal event is final, whatever the client does next", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [
        { scope: "bottle", key: "default", provider: "openai", tokens: 10_000_000 },
        { scope: "bottle", key: "default", provider: "anthropic", tokens: 10_000_000 },
      ],
    });
  });
  afterAll(() => h.close());

  // 1 and 50 ms: the window real upstreams leave; 400 ms: the client surely closes first.
  for (const endDelayMs of [1, 50, 400]) {
    it(`openai 7.x chat stream (cancels at [DONE]), upstream ends ${endDelayMs} ms later: settled with the reported usage`, async () => {
      const before = (await h.store.events()).length;
      h.up.enqueue({ text: "one two three", usage: { input: 61, output: 57 }, endDelayMs });
      const stream = await openai7(h).chat.completions.create({
        model: CHAT,
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 16_000,
        stream: true,
      });
      let said = "";
      for await (const chunk of stream) said += chunk.choices[0]?.delta?.content ?? "";
      expect(said).toBe("one two three");
      const ev = (await settledEvents(h, before + 1)).at(-1);
      expect(ev).toMatchObject({ inputTokens: 61, outputTokens: 57, usageMissing: false });
      expect(ev?.tokens).toBe(118);
    });

    it(`responses stream closed after response.completed (Codex), upstream ends ${endDelayMs} ms later: exact usage`, async () => {
      const before = (await h.store.events()).length;
      h.up.enqueue({ text: "done", usage: { input: 200, output: 29 }, endDelayMs });
      const text = await readUntilThenClose(
        `${h.gw.url}/v1/responses`,
        { model: CHAT, input: "hi", stream: true, max_output_tokens: 14_000 },
        "response.completed",
      );
      expect(text).toContain("response.completed");
      const ev = (await settledEvents(h, before + 1)).at(-1);
      expect(ev).toMatchObject({ inputTokens: 200, outputTokens: 29, usageMissing: false });
      expect(ev?.tokens).toBe(229);
    });

    it(`anthropic messages closed after message_stop, upstream ends ${endDelayMs} ms later: exact usage`, async () => {
      const before = (await h.store.events()).length;
      h.anthropicUp.enqueue({ text: "hey", usage: { input: 300, output: 40 }, endDelayMs });
      await readUntilThenClose(
        `${h.gw.url}/v1/messages`,
        {
          model: CLAUDE,
          max_tokens: 128_000,
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        },
        "message_stop",
      );
      const ev = (await settledEvents(h, before + 1)).at(-1);
      expect(ev).toMatchObject({ inputTokens: 300, outputTokens: 40, usageMissing: false });
    });
  }

  it("openai 6.x and the Anthropic SDK, read to the end: exact usage too", async () => {
    const before = (await h.store.events()).length;
    h.up.enqueue({ text: "a b", usage: { input: 10, output: 2 }, endDelayMs: 20 });
    const s6 = await h.openai().chat.completions.create({
      model: CHAT,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    for await (const _ of s6) void _;
    h.anthropicUp.enqueue({ text: "c d", usage: { input: 11, output: 3 }, endDelayMs: 20 });
    await h
      .anthropic()
      .messages.stream({
        model: CLAUDE,
        max_tokens: 64_000,
        messages: [{ role: "user", content: "x" }],
      })
      .finalMessage();
    const evs = (await settledEvents(h, before + 2)).slice(-2);
    const byTokens = evs.map((e) => [e.inputTokens, e.outputTokens, e.usageMissing]).sort();
    expect(byTokens).toEqual([
      [10, 2, false],
      [11, 3, false],
    ]);
  });

  it("a stream the client leaves before any usage report is still charged its reservation", async () => {
    const before = (await h.store.events()).length;
    h.up.enqueue({
      text: Array.from({ length: 100 }, (_, i) => `w${i}`).join(" "),
      frameDelayMs: 10,
    });
    await readUntilThenClose(
      `${h.gw.url}/v1/responses`,
      { model: CHAT, input: "hi", stream: true, max_output_tokens: 500 },
      "output_text.delta",
    );
    const ev = (await settledEvents(h, before + 1)).at(-1);
    expect(ev?.usageMissing).toBe(true);
    expect(ev?.tokens).toBeGreaterThanOrEqual(500);
  });
});

describe("item 5: client mistakes in numbers are 400s in the client API's shape", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [{ scope: "bottle", key: "default", provider: "openai", tokens: 1_000_000 }],
    });
  });
  afterAll(() => h.close());

  const bad: [string, unknown][] = [
    ["1e16", 1e16],
    ["2^53", 2 ** 53],
    ["1.5", 1.5],
    ["-1", -1],
    ["0", 0],
    ['"100"', "100"],
  ];
  for (const [label, value] of bad) {
    it(`max_tokens ${label}: openai chat, responses and anthropic messages answer 400 naming the key`, async () => {
      const e6 = await h
        .openai()
        .chat.completions.create({
          model: CHAT,
          messages: [{ role: "user", content: "x" }],
          max_tokens: value as number,
        })
        .catch((e: unknown) => e);
      expect(e6).toBeInstanceOf(OpenAI.BadRequestError);
      expect(e6).toMatchObject({ status: 400, type: "invalid_request_error" });
      expect((e6 as Error).message).toContain("max_tokens: must be an integer from 1 to");

      const e7 = await openai7(h)
        .responses.create({ model: CHAT, input: "x", max_output_tokens: value as number })
        .catch((e: unknown) => e);
      expect(e7).toBeInstanceOf(OpenAI7.BadRequestError);
      expect((e7 as Error).message).toContain("max_output_tokens: must be an integer");

      const ea = await h
        .anthropic()
        .messages.create({
          model: CLAUDE,
          max_tokens: value as number,
          messages: [{ role: "user", content: "x" }],
        })
        .catch((e: unknown) => e);
      expect(ea).toBeInstanceOf(Anthropic.BadRequestError);
      expect((ea as { error: unknown }).error).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error" },
      });
      expect(h.up.requests.length + h.anthropicUp.requests.length).toBe(0);
      expect(h.logs.filter((l) => l.level === "error")).toEqual([]);
    });
  }

  it("max_completion_tokens and stream are checked too; the refusal says not to retry", async () => {
    const res = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: CHAT,
        messages: [{ role: "user", content: "x" }],
        max_completion_tokens: 2 ** 53 + 2,
      }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-should-retry")).toBe("false");
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.message).toMatch(/^max_completion_tokens: must be an integer/);
    const s = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: CHAT, messages: [], stream: "yes" }),
    });
    expect(s.status).toBe(400);
    expect(((await s.json()) as { error: { message: string } }).error.message).toMatch(/^stream:/);
  });
});

describe("item 2: a budget smaller than the client's output cap clamps the cap instead of refusing", () => {
  const LIMIT = 3_000;
  const ERR = 7;
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [
        { scope: "bottle", key: "default", provider: "anthropic", tokens: LIMIT },
        { scope: "bottle", key: "default", provider: "openai", tokens: 2_000 },
      ],
    });
  });
  afterAll(() => h.close());

  it("max_tokens 128000 against 3,000 tokens: forwarded with the cap the budget allows, a header says so; the total exceeds the limit only by the input estimate's error", async () => {
    // The upstream uses every token of the cap it got and counts ERR more input tokens than the
    // gateway's estimate (ceil(bytes / 4)).
    h.anthropicUp.setDefaultReply({
      text: "ok",
      usageFrom: (body, bytes) => ({
        input: Math.ceil(bytes / 4) + ERR,
        output: (body as { max_tokens: number }).max_tokens,
      }),
    });
    const first = await h
      .anthropic()
      .messages.create({
        model: CLAUDE,
        max_tokens: 128_000,
        messages: [{ role: "user", content: "say hi" }],
      })
      .withResponse();
    expect(first.data.content[0]).toMatchObject({ type: "text", text: "ok" });
    const fwd = h.anthropicUp.requests.at(-1);
    if (fwd === undefined) throw new Error("the upstream got no request");
    const forwardedCap = (fwd.body as { max_tokens: number }).max_tokens;
    const inputEstimate = Math.ceil(Buffer.byteLength(fwd.rawBody) / 4);
    expect(first.response.headers.get("x-bottlekit-max-tokens-clamped")).toBe(String(forwardedCap));
    expect(first.response.headers.get("x-bottlekit-max-tokens-requested")).toBe("128000");
    // The reservation was exactly what the budget had left.
    expect(inputEstimate + forwardedCap).toBe(LIMIT);
    const used = (await h.store.usage({ bottle: "default", provider: "anthropic" })).totals.tokens;
    expect(used).toBe(LIMIT + ERR);

    // Spent: refused, and told not to retry (the budget has no window).
    const refused = await h
      .anthropic()
      .messages.create({
        model: CLAUDE,
        max_tokens: 10,
        messages: [{ role: "user", content: "x" }],
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.RateLimitError);
    expect(
      (refused as InstanceType<typeof Anthropic.APIError>).headers?.get("x-should-retry"),
    ).toBe("false");
    expect(h.anthropicUp.requests.length).toBe(1);
  });

  it("sequential calls: unclamped while the cap fits, then clamped, then refused; overshoot = one estimate error", async () => {
    await h.store.restore("default", { by: "test", reason: "next case" });
    await h.store.removeBudgets({ provider: "anthropic" });
    await h.store.defineBudget({
      scope: "agent",
      key: "default",
      provider: "anthropic",
      tokens: LIMIT,
    });
    const agentUsed = async () =>
      (await h.store.usage({ agent: "default", provider: "anthropic" })).totals.tokens;
    const base = await agentUsed();
    // Spend the agent budget from zero: a new agent-scope budget counts all of this agent's usage,
    // so start from what is already recorded.
    expect(base).toBeGreaterThan(0);
    await h.store.removeBudgets({ provider: "anthropic" });
    await h.store.defineBudget({
      scope: "agent",
      key: "default",
      provider: "anthropic",
      tokens: base + LIMIT,
    });
    const clampedHeaders: (string | null)[] = [];
    let refusedAt = -1;
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${h.gw.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({
          model: CLAUDE,
          max_tokens: 1_000,
          messages: [{ role: "user", content: `turn ${i}` }],
        }),
      });
      await res.arrayBuffer();
      if (res.status === 429) {
        refusedAt = i;
        expect(res.headers.get("x-should-retry")).toBe("false");
        break;
      }
      expect(res.status).toBe(200);
      clampedHeaders.push(res.headers.get("x-bottlekit-max-tokens-clamped"));
    }
    expect(clampedHeaders.slice(0, 2)).toEqual([null, null]);
    expect(clampedHeaders[2]).toMatch(/^\d+$/);
    expect(refusedAt).toBe(3);
    expect((await agentUsed()) - base).toBe(LIMIT + 3 * ERR - 2 * ERR);
  });

  it("refused only when the input estimate alone does not fit (or leaves less than the 256-token floor)", async () => {
    await h.store.restore("default", { by: "test", reason: "next case" });
    const big = "x".repeat(8_400); // ~2,100 tokens of input against 2,000
    const e = await openai7(h)
      .chat.completions.create({ model: CHAT, messages: [{ role: "user", content: big }] })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI7.RateLimitError);
    expect((e as Error).message).toContain("not enough for this call's input");
    const floor = "x".repeat(7_200); // ~1,820 tokens: 180 left, under the floor
    const f = await openai7(h)
      .chat.completions.create({ model: CHAT, messages: [{ role: "user", content: floor }] })
      .catch((err: unknown) => err);
    expect(f).toBeInstanceOf(OpenAI7.RateLimitError);
    expect(h.up.requests.length).toBe(0);
    // A cap that fits after the input: clamped, answered.
    h.up.enqueue({ text: "fine" });
    const ok = await openai7(h)
      .chat.completions.create({
        model: CHAT,
        messages: [{ role: "user", content: "x".repeat(4_000) }],
        max_completion_tokens: 100_000,
      })
      .withResponse();
    expect(ok.data.choices[0]?.message.content).toBe("fine");
    const sent = h.up.requests.at(-1)?.body as { max_completion_tokens: number };
    expect(ok.response.headers.get("x-bottlekit-max-tokens-clamped")).toBe(
      String(sent.max_completion_tokens),
    );
    expect(sent.max_completion_tokens).toBeLessThan(1_000);
  });
});

describe("item 3: the gateway's own refusals stop retries", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [
        { scope: "bottle", key: "default", provider: "openai", tokens: 50 },
        { scope: "bottle", key: "default", provider: "anthropic", tokens: 30, window: "daily" },
      ],
    });
  });
  afterAll(() => h.close());
  const refusals = () => h.logs.filter((l) => l.event === "budget.refused").length;

  it("openai 6.x and 7.x with their default retries send one request for a spent budget without a window", async () => {
    h.up.enqueue({ text: "spend", usage: { input: 40, output: 20 } });
    await h.openai().chat.completions.create({
      model: CHAT,
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
    });
    const n = refusals();
    const c6 = new OpenAI({ apiKey: "local", baseURL: `${h.gw.url}/v1` }); // maxRetries: 2
    const e6 = await c6.chat.completions
      .create({ model: CHAT, messages: [{ role: "user", content: "x" }], max_tokens: 1 })
      .catch((e: unknown) => e);
    expect(e6).toMatchObject({ status: 429, type: "budget_exceeded" });
    expect((e6 as InstanceType<typeof OpenAI.APIError>).headers?.get("x-should-retry")).toBe(
      "false",
    );
    expect((e6 as InstanceType<typeof OpenAI.APIError>).headers?.get("retry-after")).toBeNull();
    const e7 = await openai7(h, 2)
      .responses.create({ model: CHAT, input: "x", max_output_tokens: 1 })
      .catch((e: unknown) => e);
    expect(e7).toBeInstanceOf(OpenAI7.RateLimitError);
    expect(refusals() - n).toBe(2);
  });

  it("a spent daily budget: retry-after until the window resets, and x-should-retry false (longer than an SDK waits)", async () => {
    // The previous case cut the bottle off (no window: only an operator lifts that).
    await h.store.restore("default", { by: "test", reason: "next case" });
    h.anthropicUp.enqueue({ text: "spend", usage: { input: 20, output: 20 } });
    await h.anthropic().messages.create({
      model: CLAUDE,
      max_tokens: 1,
      messages: [{ role: "user", content: "x" }],
    });
    const n = refusals();
    const client = new Anthropic({ apiKey: "local", baseURL: h.gw.url }); // maxRetries: 2
    const e = await client.messages
      .create({ model: CLAUDE, max_tokens: 1, messages: [{ role: "user", content: "x" }] })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(Anthropic.RateLimitError);
    const headers = (e as InstanceType<typeof Anthropic.APIError>).headers;
    const after = Number(headers?.get("retry-after"));
    const now = Date.now();
    const midnight = Math.ceil(now / 86_400_000) * 86_400_000;
    expect(after).toBeGreaterThan(0);
    expect(Math.abs(now + after * 1000 - midnight)).toBeLessThan(5_000);
    expect(headers?.get("x-should-retry")).toBe(after <= 60 ? "true" : "false");
    expect((e as Error).message).toContain("window resets in");
    expect((e as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      error: { reason: "cut-off" },
    });
    expect(refusals() - n).toBe(after <= 60 ? 3 : 1);
  });

  it("to Codex (which retries every 429 and hides its body) a refusal that cannot clear is a 400 with the same body", async () => {
    const res = await fetch(`${h.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", originator: "codex_exec" },
      body: JSON.stringify({ model: CHAT, input: "x", max_output_tokens: 1 }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-should-retry")).toBe("false");
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe("budget_exceeded");
    expect(body.error.message).toContain("is cut off");
  });

  it("other refusals of the gateway (unknown model, bad JSON) carry x-should-retry: false", async () => {
    const res = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "nope/nothing", messages: [] }),
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-should-retry")).toBe("false");
  });
});

describe("item 4: upstream retry hints, rate-limit and request-id headers pass through", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("429 and 503 from the upstream keep retry-after, retry-after-ms, x-ratelimit-*, anthropic-ratelimit-* and request ids", async () => {
    h.up.enqueue({
      fault: { kind: "status", status: 429, message: "slow down" },
      headers: {
        "retry-after": "7",
        "retry-after-ms": "7000",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "7s",
        "x-request-id": "req_upstream123",
        "set-cookie": "tracking=1",
      },
    });
    const e = await h
      .openai()
      .chat.completions.create({ model: CHAT, messages: [{ role: "user", content: "x" }] })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    const hd = (e as InstanceType<typeof OpenAI.APIError>).headers;
    expect(hd?.get("retry-after")).toBe("7");
    expect(hd?.get("retry-after-ms")).toBe("7000");
    expect(hd?.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(hd?.get("x-ratelimit-reset-requests")).toBe("7s");
    expect(hd?.get("x-request-id")).toBe("req_upstream123");
    expect(hd?.get("x-bottlekit-request-id")).toMatch(/^gw-/);
    expect(hd?.get("set-cookie")).toBeNull();

    h.anthropicUp.enqueue({
      fault: { kind: "status", status: 529 },
      headers: {
        "retry-after": "3",
        "anthropic-ratelimit-requests-remaining": "0",
        "request-id": "req_anthropic456",
      },
    });
    const a = await h
      .anthropic()
      .messages.create({ model: CLAUDE, max_tokens: 5, messages: [{ role: "user", content: "x" }] })
      .catch((err: unknown) => err);
    const ah = (a as InstanceType<typeof Anthropic.APIError>).headers;
    expect(ah?.get("retry-after")).toBe("3");
    expect(ah?.get("anthropic-ratelimit-requests-remaining")).toBe("0");
    expect(ah?.get("request-id")).toBe("req_anthropic456");
  });

  it("on success too: rate-limit headers of a streamed answer reach the client", async () => {
    h.anthropicUp.enqueue({
      text: "hi",
      headers: { "anthropic-ratelimit-tokens-remaining": "12345", "request-id": "req_ok" },
    });
    const { response } = await h
      .anthropic()
      .messages.create({
        model: CLAUDE,
        max_tokens: 5,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      })
      .withResponse();
    expect(response.headers.get("anthropic-ratelimit-tokens-remaining")).toBe("12345");
    expect(response.headers.get("request-id")).toBe("req_ok");
  });
});

describe("item 7: what real agents send is served", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [
        { scope: "bottle", key: "default", provider: "openai", tokens: 10_000_000 },
        { scope: "bottle", key: "default", provider: "anthropic", tokens: 10_000_000 },
      ],
    });
  });
  afterAll(() => h.close());

  it("POST /v1/messages/count_tokens (Claude Code, ?beta=true): forwarded to the provider's counter, unmetered", async () => {
    const before = (await h.store.events()).length;
    const client = h.anthropic();
    const r = await client.messages
      .countTokens({ model: CLAUDE, messages: [{ role: "user", content: "count me" }] })
      .withResponse();
    const fwd = h.anthropicUp.requests.at(-1);
    expect(fwd?.api).toBe("anthropic-count-tokens");
    expect(fwd?.headers["x-api-key"]).toBeDefined();
    expect(r.data.input_tokens).toBe(Math.ceil(Buffer.byteLength(fwd?.rawBody ?? "") / 4) - 1);
    expect(r.response.headers.get("x-bottlekit-token-count")).toBe("provider");
    const q = await fetch(`${h.gw.url}/v1/messages/count_tokens?beta=true`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: CLAUDE, messages: [{ role: "user", content: "x" }] }),
    });
    expect(q.status).toBe(200);
    expect((await h.store.events()).length).toBe(before);
  });

  it("count_tokens where the provider has no counter: the gateway's estimate, marked as such", async () => {
    const bare = await createFakeUpstream({ countTokens: false });
    const g = await startHarness(() => ({
      model_providers: [
        { model: "anthropic/*", base_url: `${bare.url}/v1`, access_key: "$ANTHROPIC_API_KEY" },
      ],
    }));
    try {
      const res = await fetch(`${g.gw.url}/v1/messages/count_tokens`, {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: CLAUDE, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-bottlekit-token-count")).toBe("estimate");
      const sent = bare.requests.at(-1);
      expect(sent?.api).toBe("anthropic-count-tokens");
      expect(((await res.json()) as { input_tokens: number }).input_tokens).toBe(
        Math.ceil(Buffer.byteLength(sent?.rawBody ?? "") / 4),
      );
    } finally {
      await g.close();
      await bare.close();
    }
  });

  it("HEAD /api/hello, HEAD and GET /healthz answer 200", async () => {
    for (const [method, path] of [
      ["HEAD", "/api/hello"],
      ["GET", "/api/hello"],
      ["HEAD", "/healthz"],
    ] as const) {
      const res = await fetch(`${h.gw.url}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(200);
      await res.arrayBuffer();
    }
  });

  it("GET /v1/models in the shape of the client's API: the Anthropic SDK lists and retrieves, openai lists", async () => {
    const page = await h.anthropic().models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(page.data[0]).toMatchObject({ type: "model", display_name: expect.any(String) });
    const first = ids[0] as string;
    const one = await h.anthropic().models.retrieve(first);
    expect(one.id).toBe(first);
    const oa = await h.openai().models.list();
    expect(oa.data[0]).toMatchObject({ object: "model" });
    const missing = await h
      .anthropic()
      .models.retrieve("nope/none")
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("POST /v1/embeddings (openai 7.x): forwarded with the key injected, metered on its input tokens", async () => {
    const before = (await h.store.events()).length;
    h.up.enqueue({ usage: { input: 42 } });
    const r = await openai7(h).embeddings.create({
      model: "openai/text-embedding-3-small",
      input: "embed me",
      encoding_format: "float",
    });
    expect(r.data[0]?.embedding).toEqual([0.25, -0.5, 0.125]);
    expect(h.up.requests.at(-1)?.api).toBe("openai-embeddings");
    expect(h.up.requests.at(-1)?.headers.authorization).toMatch(/^Bearer sk-proj-/);
    const ev = (await settledEvents(h, before + 1)).at(-1);
    expect(ev).toMatchObject({ inputTokens: 42, outputTokens: 0, usageMissing: false });
  });

  it("POST /v1/responses/compact (Codex): forwarded and metered exactly", async () => {
    const before = (await h.store.events()).length;
    h.up.enqueue({ usage: { input: 900, output: 120 } });
    const res = await fetch(`${h.gw.url}/v1/responses/compact`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: CHAT, input: [{ role: "user", content: "long history" }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe("response.compaction");
    expect(h.up.requests.at(-1)?.path).toBe("/v1/responses/compact");
    const ev = (await settledEvents(h, before + 1)).at(-1);
    expect(ev).toMatchObject({ inputTokens: 900, outputTokens: 120, usageMissing: false });
  });

  it("a WebSocket upgrade is refused with 426 at once (no handshake), so Codex falls back to HTTP", async () => {
    const { connect } = await import("node:net");
    const port = h.gw.address.port;
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, "127.0.0.1", () => {
        sock.write(
          "GET /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
      });
      let got = "";
      sock.on("data", (d) => {
        got += d.toString();
      });
      sock.on("end", () => resolve(got));
      sock.on("error", reject);
    });
    expect(answer.startsWith("HTTP/1.1 426 Upgrade Required")).toBe(true);
    expect(answer).toContain("HTTP only");
  });
});
