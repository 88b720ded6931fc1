import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { clampCap, refusalStatus, reserve } from "./reserve.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";
import type { ProxiedCall } from "./types.ts";

const beforeReserve = [
  identify,
  parse,
  route,
  checkCredential,
  scanOutbound,
  upstreamBody,
  countTokens,
];
const upTo = [...beforeReserve, reserve];
const session = (bottle: string): ProxiedCall => ({
  sessionId: `sess-${bottle}`,
  bottle,
  agent: "coder",
  host: "api.openai.com",
  port: 443,
});
const chat = (maxTokens: number, content = "hello") => ({
  model: "gpt-4o-mini",
  max_tokens: maxTokens,
  messages: [{ role: "user", content }],
});

describe("stage: reserve", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
    for (const [bottle, tokens] of [
      ["roomy", 1_000_000],
      ["tight", 2_000],
      ["tiny", 100],
      ["stopped", 1_000_000],
    ] as const)
      await h.store.defineBudget({ scope: "bottle", key: bottle, provider: "openai", tokens });
  });
  afterAll(() => h.close());

  it("holds the input estimate (bytes / 4) plus the client's cap against the bottle's budget", async () => {
    const r = await h.run(upTo, { body: chat(500), proxied: session("roomy") });
    expect(r.passed).toBe(true);
    expect(r.call.reservationId).not.toBe("");
    expect(r.call.clamped).toBe(false);
    const left = await h.store.remaining({
      bottle: "roomy",
      parents: [],
      agent: "coder",
      provider: "openai",
    });
    expect(left?.remaining).toBe(1_000_000 - (Math.ceil(r.call.outBytes / 4) + 500));
    expect(await h.store.release(r.call.reservationId)).toBe(true);
  });

  it("a cap the budget cannot hold is lowered in the forwarded body, and the client is told", async () => {
    const r = await h.run(upTo, { body: chat(128_000), proxied: session("tight") });
    expect(r.passed).toBe(true);
    expect(r.call.clamped).toBe(true);
    expect(r.call.requestedCap).toBe(128_000);
    const sent = JSON.parse(String(r.call.out));
    expect(sent.max_tokens).toBe(r.call.cap);
    expect(Math.ceil(r.call.outBytes / 4) + r.call.cap).toBeLessThanOrEqual(2_000);
    expect(r.headers["x-bottlekit-max-tokens-clamped"]).toBe(String(r.call.cap));
    expect(r.headers["x-bottlekit-max-tokens-requested"]).toBe("128000");
    await h.store.release(r.call.reservationId);
  });

  it("less room than the smallest clamp: refused 429 budget_exceeded, saying why", async () => {
    const r = await h.run(upTo, { body: chat(1_000), proxied: session("tiny") });
    expect(r.passed).toBe(false);
    expect(r.status).toBe(429);
    const err = JSON.parse(r.body).error;
    expect(err.type).toBe("budget_exceeded");
    expect(err.message).toContain("smallest output cap the gateway clamps to (256)");
    expect(h.cutoffs.filter((c) => c.bottle === "tiny")).toHaveLength(0);
  });

  it("a cut-off bottle: refused, not retried, and the cutoff is reported for its proxy session", async () => {
    await h.store.cutOff("stopped", { by: "operator", reason: "stage test" });
    const r = await h.run(upTo, { body: chat(10), proxied: session("stopped") });
    expect(r.status).toBe(429);
    expect(r.headers["x-should-retry"]).toBe("false");
    expect(JSON.parse(r.body).error.message).toContain('bottle "stopped" is cut off');
    await expect.poll(() => h.cutoffs.filter((c) => c.bottle === "stopped").length).toBe(1);
    expect(h.cutoffs.filter((c) => c.bottle === "stopped")).toEqual([
      {
        bottle: "stopped",
        reason: "cut-off",
        sessionId: "sess-stopped",
        requestId: r.call.requestId,
      },
    ]);
  });

  it("refusalStatus: Codex gets 400 for a refusal retrying cannot clear (it retries every 429)", () => {
    const req = (headers: Record<string, string>) =>
      ({ headers }) as unknown as Parameters<typeof refusalStatus>[0];
    expect(refusalStatus(req({ originator: "codex_exec" }), false)).toBe(400);
    expect(refusalStatus(req({ "user-agent": "codex_cli_rs/0.169" }), false)).toBe(400);
    expect(refusalStatus(req({ "user-agent": "openai/js" }), false)).toBe(429);
    expect(refusalStatus(req({ originator: "codex_exec" }), true)).toBe(429);
  });

  it("property: a clamped body's estimate fits the room exactly or below, with at least the floor", async () => {
    const base = await h.run(beforeReserve, { body: chat(128_000), proxied: session("roomy") });
    const call = base.call;
    const original = String(call.out);
    await fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 1, max: 128_000 }),
        (remaining, cap) => {
          call.body = JSON.parse(original);
          call.out = original;
          call.outBytes = Buffer.byteLength(original);
          call.cap = cap;
          call.clamped = false;
          const input = Math.ceil(call.outBytes / 4);
          const ok = clampCap(call, h.pipeline, remaining);
          if (!ok) {
            // refused only when the room is below the floor (also once the cap's digits are
            // rewritten: a shorter number frees at most a token or two) or already holds the cap
            const room = remaining - input;
            expect(room >= cap || room - 2 < h.pipeline.minClampTokens).toBe(true);
            expect(call.out).toBe(original);
            return;
          }
          expect(call.cap).toBeGreaterThanOrEqual(h.pipeline.minClampTokens);
          expect(call.cap).toBeLessThan(cap);
          expect(Math.ceil(call.outBytes / 4) + call.cap).toBeLessThanOrEqual(remaining);
          expect(call.outBytes).toBe(Buffer.byteLength(String(call.out)));
          expect(JSON.parse(String(call.out)).max_tokens).toBe(call.cap);
        },
      ),
      { numRuns: 400 },
    );
  });
});
