import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANTHROPIC_KEY, type Harness, OPENAI_KEY, startHarness } from "./helpers.ts";

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "openai/gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
  max_tokens: 1,
  ...extra,
});

describe("budgets", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      budgets: [{ scope: "bottle", key: "default", provider: "openai", tokens: 100 }],
    });
  });
  afterAll(() => h.close());

  it("allows exactly the limit, then answers 429 budget_exceeded in the API's shape; cut off until restored", async () => {
    const client = h.openai();
    for (let i = 0; i < 4; i++) {
      h.up.enqueue({ text: "ok", usage: { input: 20, output: 5 } });
      await client.chat.completions.create(chat("hi"));
    }
    const report = await h.store.usage({ bottle: "default", provider: "openai" });
    expect(report.totals.tokens).toBe(100);
    const metrics = await fetch(`${h.gw.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(
      /bottlekit_gateway_budget_remaining_tokens\{bottle="default",agent="default",provider="openai",scope="bottle"\} \d+/,
    );

    const refused = await client.chat.completions.create(chat("hi")).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429, type: "budget_exceeded" });
    const body = (
      refused as { error: { scope: { scope: string; key: string }; remaining: number } }
    ).error;
    expect(body.scope).toMatchObject({ key: "default", provider: "openai" });
    expect(body.remaining).toBe(0);
    expect(h.up.requests.length).toBe(4);

    // Anthropic's client sees the same refusal in Anthropic's error shape (other provider, same bottle: cut off).
    const a = await h
      .anthropic()
      .messages.create({
        model: "anthropic/claude-sonnet-4-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      })
      .catch((e: unknown) => e);
    expect(a).toMatchObject({
      status: 429,
      error: { type: "error", error: { type: "budget_exceeded", reason: "cut-off" } },
    });

    // Raising the budget does not lift a cutoff; only an operator restore does.
    await h.store.defineBudget({
      scope: "bottle",
      key: "default",
      provider: "openai",
      tokens: 1_000,
      source: "flag",
    });
    expect(await h.store.isCutOff("default")).toBe(true);
    await expect(client.chat.completions.create(chat("hi"))).rejects.toMatchObject({ status: 429 });
    expect(await h.store.restore("default", { by: "test", reason: "budget raised" })).toBe(true);
    h.up.enqueue({ text: "back", usage: { input: 20, output: 5 } });
    const r = await client.chat.completions.create(chat("hi"));
    expect(r.choices[0]?.message.content).toBe("back");
  });

  it("refuses a call whose worst case does not fit (insufficient), with the remaining amount", async () => {
    await h.store.defineBudget({
      scope: "agent",
      key: "default",
      provider: "openai",
      tokens: 150,
      source: "flag",
    });
    const used = (await h.store.usage({ agent: "default", provider: "openai" })).totals.tokens;
    const err = await h
      .openai()
      .chat.completions.create(chat("hi", { max_tokens: 10_000 }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, type: "budget_exceeded" });
    expect((err as { error: { reason: string; remaining: number } }).error).toMatchObject({
      reason: "insufficient",
      remaining: 150 - used,
    });
  });
});

describe("identity", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("on loopback without keys, refuses a real provider key and runs anything else as `default`", async () => {
    await expect(h.openai(OPENAI_KEY).chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 401,
      type: "authentication_error",
    });
    const lookalike = `sk-ant-api03-${"Ab3".repeat(30)}AA`;
    await expect(
      h.anthropic(lookalike).messages.create({
        model: "anthropic/claude-sonnet-4-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }),
    ).rejects.toMatchObject({ status: 401 });
    expect(h.up.requests.length + h.anthropicUp.requests.length).toBe(0);
    await h.openai("anything-local").chat.completions.create(chat("x"));
    expect((await h.store.events()).at(-1)).toMatchObject({ bottle: "default", agent: "default" });
    // The negative verdict for a repeated credential is remembered; a provider key still is not.
    await h.openai("anything-local").chat.completions.create(chat("x"));
    await expect(h.openai(OPENAI_KEY).chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 401,
    });
    expect(h.up.requests.length).toBe(2);
  });

  it("gateway keys decide the scope; without one, or revoked, calls are refused", async () => {
    const k = await h.store.createGatewayKey({ bottle: "team-a", agent: "coder" });
    await expect(
      h.openai("anything-local").chat.completions.create(chat("x")),
    ).rejects.toMatchObject({ status: 401 });
    await h.openai(k.key).chat.completions.create(chat("x"));
    expect((await h.store.events()).at(-1)).toMatchObject({ bottle: "team-a", agent: "coder" });
    // Anthropic clients send it as x-api-key
    await h.anthropic(k.key).messages.create({
      model: "anthropic/claude-sonnet-4-5",
      max_tokens: 5,
      messages: [{ role: "user", content: "x" }],
    });
    expect((await h.store.events()).at(-1)).toMatchObject({
      bottle: "team-a",
      provider: "anthropic",
    });
    expect(h.anthropicUp.requests.at(-1)?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    await h.store.revokeGatewayKey(k.id);
    await expect(h.openai(k.key).chat.completions.create(chat("x"))).rejects.toMatchObject({
      status: 401,
    });
  });
});

describe("passthrough_auth", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness((u) => ({
      model_providers: [{ model: "openai/*", base_url: `${u.openai}/v1`, passthrough_auth: true }],
    }));
  });
  afterAll(() => h.close());

  it("forwards the client's own credential to a passthrough provider, and requires one", async () => {
    await h.openai(OPENAI_KEY).chat.completions.create(chat("x"));
    expect(h.up.requests.at(-1)?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    const res = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chat("x")),
    });
    expect(res.status).toBe(401);
  });
});

describe("limits", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ max_body_bytes: 2048 });
  });
  afterAll(() => h.close());

  it("a body over max_body_bytes is refused with 413 before anything else runs", async () => {
    const err = await h
      .openai()
      .chat.completions.create(chat("x".repeat(4096)))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 413, type: "invalid_request_error" });
    expect(h.up.requests.length).toBe(0);
    await h.openai().chat.completions.create(chat("small"));
    expect(h.up.requests.length).toBe(1);
  });
});
