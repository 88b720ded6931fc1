import type { Cost, ModelPrice, PriceTier, Usage } from "./types.ts";

/**
 * What `usage` costs at `price`. Never 0 for an unknown price: without one the result is
 * `{ status: "unpriced" }`, so a budget can refuse or charge a ceiling instead of nothing.
 *
 * Input tokens are split into uncached, cache-read and cache-write parts; a cache part without its
 * own price is charged at the input price (never less). When the input exceeds a long-context
 * tier's threshold, that tier's prices apply to the whole call. Pure arithmetic, O(tiers).
 */
export function costOf(usage: Usage, price: ModelPrice | undefined | null): Cost {
  if (!price) return { status: "unpriced", reason: "no price known for this model" };
  const input = count(usage.inputTokens);
  const output = count(usage.outputTokens);
  const cacheRead = Math.min(count(usage.cacheReadTokens), input);
  const cacheWrite = Math.min(count(usage.cacheWriteTokens), input - cacheRead);
  const uncached = input - cacheRead - cacheWrite;

  const tier = tierFor(price.tiers, input);
  const pIn = tier?.input ?? price.input;
  const pOut = tier?.output ?? price.output;
  const pRead = tier?.cacheRead ?? price.cacheRead ?? pIn;
  const pWrite = tier?.cacheWrite ?? price.cacheWrite ?? pIn;
  if (![pIn, pOut, pRead, pWrite].every((p) => Number.isFinite(p) && p >= 0)) {
    return { status: "unpriced", reason: "the price has a negative or non-finite component" };
  }
  const breakdown = {
    input: uncached * pIn,
    output: output * pOut,
    cacheRead: cacheRead * pRead,
    cacheWrite: cacheWrite * pWrite,
  };
  return {
    status: "priced",
    usd: breakdown.input + breakdown.output + breakdown.cacheRead + breakdown.cacheWrite,
    breakdown,
    provenance: price.provenance,
  };
}

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function tierFor(tiers: readonly PriceTier[] | undefined, input: number): PriceTier | undefined {
  let chosen: PriceTier | undefined;
  for (const t of tiers ?? []) if (input > t.aboveInputTokens) chosen = t;
  return chosen;
}
