import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { costOf, type ModelPrice, type Usage } from "./index.ts";

const usage = (u: Partial<Usage>): Usage => ({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  ...u,
});
const prov = { source: "test", version: "0", key: "t/m" };
const price: ModelPrice = {
  currency: "USD",
  input: 3e-6,
  output: 15e-6,
  cacheRead: 0.3e-6,
  cacheWrite: 3.75e-6,
  tiers: [
    {
      aboveInputTokens: 200_000,
      input: 6e-6,
      output: 22.5e-6,
      cacheRead: 0.6e-6,
      cacheWrite: 7.5e-6,
    },
  ],
  provenance: prov,
};

describe("costOf", () => {
  it("says unpriced instead of 0 when there is no price", () => {
    expect(costOf(usage({ inputTokens: 10 }), undefined)).toEqual({
      status: "unpriced",
      reason: "no price known for this model",
    });
  });

  it("splits input into uncached, cache read and cache write", () => {
    const c = costOf(
      usage({
        inputTokens: 1_000_000,
        cacheReadTokens: 400_000,
        cacheWriteTokens: 100_000,
        outputTokens: 10_000,
      }),
      {
        ...price,
        tiers: [],
      },
    );
    expect(c.status).toBe("priced");
    if (c.status !== "priced") return;
    expect(c.breakdown.input).toBeCloseTo(500_000 * 3e-6, 10);
    expect(c.breakdown.cacheRead).toBeCloseTo(400_000 * 0.3e-6, 10);
    expect(c.breakdown.cacheWrite).toBeCloseTo(100_000 * 3.75e-6, 10);
    expect(c.breakdown.output).toBeCloseTo(10_000 * 15e-6, 10);
    expect(c.usd).toBeCloseTo(1.5 + 0.12 + 0.375 + 0.15, 10);
    expect(c.provenance).toBe(prov);
  });

  it("charges cache tokens at the input price when the model lists no cache price", () => {
    const c = costOf(usage({ inputTokens: 100, cacheReadTokens: 100 }), {
      currency: "USD",
      input: 1e-6,
      output: 2e-6,
      provenance: prov,
    });
    expect(c.status === "priced" && c.usd).toBeCloseTo(100e-6, 12);
  });

  it("applies a long-context tier to the whole call above its threshold", () => {
    const below = costOf(usage({ inputTokens: 200_000, outputTokens: 1000 }), price);
    const above = costOf(usage({ inputTokens: 200_001, outputTokens: 1000 }), price);
    expect(below.status === "priced" && below.usd).toBeCloseTo(0.6 + 0.015, 8);
    expect(above.status === "priced" && above.usd).toBeCloseTo(200_001 * 6e-6 + 1000 * 22.5e-6, 8);
  });

  it("clamps nonsense counts instead of producing negative or NaN cost", () => {
    const c = costOf(
      usage({ inputTokens: Number.NaN, outputTokens: -5, cacheReadTokens: 50 }),
      price,
    );
    expect(c).toMatchObject({ status: "priced", usd: 0 });
  });

  it("property: cost is finite, non-negative and grows with output tokens", () => {
    fc.assert(
      fc.property(
        fc.nat(10_000_000),
        fc.nat(10_000_000),
        fc.nat(10_000_000),
        fc.nat(10_000_000),
        (i, o, cr, cw) => {
          const a = costOf(
            usage({ inputTokens: i, outputTokens: o, cacheReadTokens: cr, cacheWriteTokens: cw }),
            price,
          );
          const b = costOf(
            usage({
              inputTokens: i,
              outputTokens: o + 1,
              cacheReadTokens: cr,
              cacheWriteTokens: cw,
            }),
            price,
          );
          if (a.status !== "priced" || b.status !== "priced") throw new Error("expected priced");
          expect(Number.isFinite(a.usd) && a.usd >= 0).toBe(true);
          expect(b.usd).toBeGreaterThan(a.usd);
        },
      ),
    );
  });
});
