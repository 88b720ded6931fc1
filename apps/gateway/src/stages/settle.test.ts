import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { reserve } from "./reserve.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";
import { notifyCutoff, release, settle } from "./settle.ts";
import type { Pipeline } from "./types.ts";

const reserved = [
  identify,
  parse,
  route,
  checkCredential,
  scanOutbound,
  upstreamBody,
  countTokens,
  reserve,
];
const usage = (input: number, output: number) => ({
  inputTokens: input,
  outputTokens: output,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  usageMissing: false,
});

describe("stage: settle", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
    await h.store.defineBudget({
      scope: "bottle",
      key: "ledger",
      provider: "openai",
      tokens: 1_000,
    });
  });
  afterAll(() => h.close());

  const reserveOne = async (maxTokens = 10) =>
    (
      await h.run(reserved, {
        body: { model: "gpt-4o-mini", max_tokens: maxTokens, messages: [] },
        proxied: {
          sessionId: "sess-l",
          bottle: "ledger",
          agent: "a",
          host: "api.openai.com",
          port: 443,
        },
      })
    ).call;

  it("records the usage as reported, counts tokens in /metrics, and frees the hold", async () => {
    const call = await reserveOne();
    await settle(h.pipeline, call, usage(40, 6));
    const ev = (await h.store.events({ bottle: "ledger" })).find(
      (e) => e.requestId === call.requestId,
    );
    expect(ev).toMatchObject({
      inputTokens: 40,
      outputTokens: 6,
      usageMissing: false,
      model: "gpt-4o-mini",
    });
    const left = await h.store.remaining({
      bottle: "ledger",
      parents: [],
      agent: "a",
      provider: "openai",
    });
    expect(left?.remaining).toBe(1_000 - 46);
    expect(h.pipeline.metrics.render()).toMatch(/input"\} 40/);
    expect(h.cutoffs).toHaveLength(0);
  });

  it("release drops the hold without usage; a second release finds nothing", async () => {
    const call = await reserveOne();
    await release(h.pipeline, call);
    expect(await h.store.release(call.reservationId)).toBe(false);
    expect(
      (await h.store.events({ bottle: "ledger" })).some((e) => e.requestId === call.requestId),
    ).toBe(false);
  });

  it("the settle that spends the budget reports the cutoff; a throwing listener is logged, not thrown", async () => {
    const call = await reserveOne();
    const throwing: Pipeline = {
      ...h.pipeline,
      onCutoff: () => {
        throw new Error("listener broke");
      },
    };
    await settle(throwing, call, usage(900, 100));
    expect(await h.store.isCutOff("ledger")).toBe(true);
    expect(h.logs.some((l) => l.event === "cutoff.notify_failed")).toBe(true);
    notifyCutoff(h.pipeline, call, "crossed");
    expect(h.cutoffs).toEqual([
      { bottle: "ledger", reason: "crossed", sessionId: "sess-l", requestId: call.requestId },
    ]);
  });

  it("a store that fails on settle is logged, never thrown at the client", async () => {
    const call = await reserveOne();
    call.reservationId = "no-such-reservation";
    await settle(h.pipeline, call, usage(1, 1));
    expect(h.logs.some((l) => l.event === "settle.failed" && l.requestId === call.requestId)).toBe(
      true,
    );
  });
});
