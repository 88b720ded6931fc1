import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { LLM_STAGES } from "./index.ts";

const chat = (extra: Record<string, unknown> = {}) => ({
  model: "openai/gpt-4o-mini",
  max_tokens: 20,
  messages: [{ role: "user", content: "hi" }],
  ...extra,
});

describe("stage: respond (error status, JSON, stream) and settle", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("JSON: the upstream's bytes reach the client; the ledger records the upstream's usage", async () => {
    h.up.enqueue({ text: "json answer", usage: { input: 11, output: 4 } });
    const r = await h.run(LLM_STAGES, { body: chat() });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).choices[0].message.content).toBe("json answer");
    const ev = (await h.store.events({})).find((e) => e.requestId === r.call.requestId);
    expect(ev).toMatchObject({ inputTokens: 11, outputTokens: 4, usageMissing: false });
  });

  it("stream: forwarded as events, the usage the gateway asked for stripped again, the ledger exact", async () => {
    h.up.enqueue({ pieces: ["str", "eam"], usage: { input: 9, output: 2 } });
    const r = await h.run(LLM_STAGES, { body: chat({ stream: true }) });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(r.body).toContain("str");
    expect(r.body).toContain("[DONE]");
    expect(r.body).not.toContain('"usage":{');
    const ev = (await h.store.events({})).find((e) => e.requestId === r.call.requestId);
    expect(ev).toMatchObject({ inputTokens: 9, outputTokens: 2, usageMissing: false });
  });

  it("an upstream error status: its body and retry hints pass through, the reservation is released, nothing charged", async () => {
    h.up.enqueue({
      fault: { kind: "status", status: 429, message: "slow down" },
      headers: { "retry-after": "7" },
    });
    const r = await h.run(LLM_STAGES, { body: chat() });
    expect(r.status).toBe(429);
    expect(r.headers["retry-after"]).toBe("7");
    expect(r.body).toContain("slow down");
    expect((await h.store.events({})).some((e) => e.requestId === r.call.requestId)).toBe(false);
    expect(await h.store.release(r.call.reservationId)).toBe(false);
  });

  it("a stream cut before its end: an error event for the client, and the call charged its reservation", async () => {
    h.up.enqueue({ pieces: ["a", "b", "c"], fault: { kind: "truncate", afterFrames: 1 } });
    const r = await h.run(LLM_STAGES, { body: chat({ stream: true }) });
    expect(r.body).toContain("upstream");
    const ev = (await h.store.events({})).find((e) => e.requestId === r.call.requestId);
    expect(ev?.usageMissing).toBe(true);
  });

  it("a settle that spends the bottle's budget reports the cutoff (crossed) once", async () => {
    await h.store.defineBudget({
      scope: "bottle",
      key: "spender",
      provider: "openai",
      tokens: 400,
    });
    h.up.enqueue({ text: "big", usage: { input: 300, output: 200 } });
    const r = await h.run(LLM_STAGES, {
      body: chat({ model: "gpt-4o-mini" }),
      proxied: { sessionId: "sess-sp", bottle: "spender", host: "api.openai.com", port: 443 },
    });
    expect(r.status).toBe(200);
    await expect.poll(() => h.cutoffs.filter((c) => c.bottle === "spender").length).toBe(1);
    expect(h.cutoffs.find((c) => c.bottle === "spender")).toEqual({
      bottle: "spender",
      reason: "crossed",
      sessionId: "sess-sp",
      requestId: r.call.requestId,
    });
    expect(await h.store.isCutOff("spender")).toBe(true);
    expect(h.logs.some((l) => l.event === "budget.crossed" && l["bottle"] === "spender")).toBe(
      true,
    );
  });
});
