import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.ts";

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
  max_tokens: 50,
  ...extra,
});
const subject = { bottle: "default", agent: "default", provider: "openai" };

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    budgets: [{ scope: "bottle", key: "default", provider: "openai", tokens: 10_000_000 }],
  });
});
afterAll(() => h.close());
beforeEach(() => h.up.reset());

async function reserved(): Promise<number> {
  return (await h.store.remaining(subject))?.reserved ?? -1;
}

describe("upstream faults", () => {
  it("timeout → 504 upstream_timeout, reservation released, nothing charged", async () => {
    const events = (await h.store.events()).length;
    h.up.enqueue({ fault: { kind: "timeout" } });
    await expect(h.openai().chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 504,
      type: "upstream_timeout",
    });
    expect(await reserved()).toBe(0);
    expect((await h.store.events()).length).toBe(events);
  });

  it("5xx → the upstream's error passes through, reservation released", async () => {
    h.up.enqueue({ fault: { kind: "status", status: 503, message: "try later" } });
    await expect(h.openai().chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 503,
    });
    h.anthropicUp.enqueue({ fault: { kind: "status", status: 529 } });
    await expect(
      h.anthropic().messages.create({
        model: "anthropic/claude-sonnet-4-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toMatchObject({ status: 529, error: { error: { type: "overloaded_error" } } });
    expect(await reserved()).toBe(0);
  });

  it("connection reset → 502 upstream_connection_error, reservation released", async () => {
    h.up.enqueue({ fault: { kind: "reset" } });
    await expect(h.openai().chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 502,
      type: "upstream_connection_error",
    });
    expect(await reserved()).toBe(0);
  });

  it.each(["destroy", "end"] as const)(
    "truncated stream (%s) → an in-stream error, charged its full reservation, flagged usageMissing",
    async (mode) => {
      h.up.enqueue({ text: "a b c d e f g h", fault: { kind: "truncate", afterFrames: 4, mode } });
      const stream = await h
        .openai()
        .chat.completions.create({ ...chat("x"), stream: true as const });
      let text = "";
      const run = (async () => {
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      })();
      await expect(run).rejects.toThrow(/upstream/);
      expect(text.length).toBeGreaterThan(0);
      const ev = (await h.store.events()).at(-1);
      expect(ev?.usageMissing).toBe(true);
      // estimate = ceil(bytes / 4) + max_tokens (50): charged in full, never zero
      expect(ev?.tokens).toBeGreaterThanOrEqual(50);
      expect(await reserved()).toBe(0);
    },
  );

  it("a complete stream whose upstream never reported usage: no client error, charged its reservation", async () => {
    h.up.enqueue({ text: "fine answer", omitUsage: true });
    const stream = await h
      .openai()
      .chat.completions.create({ ...chat("x"), stream: true as const });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe("fine answer");
    const ev = (await h.store.events()).at(-1);
    expect(ev?.usageMissing).toBe(true);
    expect(ev?.tokens).toBeGreaterThanOrEqual(50);
    expect(h.logs.some((l) => l.event === "usage.missing")).toBe(true);
  });

  it("truncated Anthropic stream → the SDK raises, usage flagged missing", async () => {
    h.anthropicUp.enqueue({ text: "a b c d e f", fault: { kind: "truncate", afterFrames: 3 } });
    await expect(
      h
        .anthropic()
        .messages.stream({
          model: "anthropic/claude-sonnet-4-5",
          max_tokens: 100,
          messages: [{ role: "user", content: "x" }],
        })
        .finalMessage(),
    ).rejects.toThrow();
    const ev = (await h.store.events({ provider: "anthropic" })).at(-1);
    expect(ev?.usageMissing).toBe(true);
    expect(ev?.tokens).toBeGreaterThanOrEqual(100);
  });
});

describe("client disconnect", () => {
  it("cancels the upstream request and settles the call as usageMissing", async () => {
    h.up.enqueue({
      text: Array.from({ length: 200 }, (_, i) => `w${i}`).join(" "),
      frameDelayMs: 20,
    });
    const ac = new AbortController();
    const res = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("long", { stream: true })),
      signal: ac.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    ac.abort();
    const aborted = await h.up.waitForAbort(60_000);
    expect(aborted.aborted).toBe(true);
    expect(aborted.completed).toBe(false);
    await expect
      .poll(async () => (await h.store.events()).at(-1)?.usageMissing, { timeout: 60_000 })
      .toBe(true);
    expect(await reserved()).toBe(0);
  });
});

describe("client disconnect before the upstream answers", () => {
  it("aborts the pending upstream request and releases the reservation", async () => {
    const events = (await h.store.events()).length;
    h.up.enqueue({ fault: { kind: "timeout" } });
    const ac = new AbortController();
    const pending = fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("x")),
      signal: ac.signal,
    }).catch(() => "aborted");
    await expect.poll(() => h.up.requests.length, { timeout: 60_000 }).toBe(1);
    ac.abort();
    expect(await pending).toBe("aborted");
    const aborted = await h.up.waitForAbort(60_000);
    expect(aborted.completed).toBe(false);
    await expect.poll(reserved, { timeout: 60_000 }).toBe(0);
    expect((await h.store.events()).length).toBe(events);
    await expect.poll(() => h.gw.gateway.inFlight(), { timeout: 60_000 }).toBe(0);
  });
});

describe("backpressure", () => {
  it("a slow reader still gets every byte, in order", async () => {
    const words = Array.from({ length: 3000 }, (_, i) => `word${i}`);
    h.up.enqueue({ text: words.join(" ") });
    const res = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("long", { stream: true })),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let raw = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      raw += dec.decode(value, { stream: true });
      await new Promise((r) => setTimeout(r, 1));
    }
    const text = raw
      .split("\n\n")
      .filter((f) => f.startsWith("data: {"))
      .map(
        (f) =>
          (JSON.parse(f.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]
            ?.delta.content ?? "",
      )
      .join("");
    expect(text).toBe(words.join(" "));
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });
});

describe("shutdown", () => {
  it("drains an in-flight stream, refuses new calls, then closes", async () => {
    const d = await startHarness();
    try {
      d.up.enqueue({ text: "one two three four five six seven eight", frameDelayMs: 40 });
      const stream = await d
        .openai()
        .chat.completions.create({ ...chat("x"), stream: true as const });
      const collected = (async () => {
        let t = "";
        for await (const c of stream) t += c.choices[0]?.delta.content ?? "";
        return t;
      })();
      await new Promise((r) => setTimeout(r, 60));
      const closing = d.gw.gateway.close(5_000);
      // A new call is refused: 503 on a kept-alive socket, or the listener is already closed.
      const late = await fetch(`${d.gw.url}/v1/chat/completions`, {
        method: "POST",
        body: "{}",
      }).then(
        (r) => r.status,
        () => "refused",
      );
      expect([503, "refused"]).toContain(late);
      expect(await collected).toBe("one two three four five six seven eight");
      await closing;
    } finally {
      await d.close().catch(() => {});
    }
  });
});
