import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { burnSeries, HOUR_MS, minuteGrid, rollupRanges, shapeReport } from "./reports.ts";

const DAY_MS = 24 * HOUR_MS;

/** Which parts of rollupRanges(since, until) contain instant t (as ms ranges). */
function partsContaining(since: number | undefined, until: number | undefined, t: number): number {
  const r = rollupRanges(since, until);
  const inMs = (lo: number, hi: number) => t >= lo && t < hi;
  let n = 0;
  if (inMs(r.days.lo * DAY_MS, r.days.hi * DAY_MS)) n++;
  for (const h of r.hours) if (inMs(h.lo * HOUR_MS, h.hi * HOUR_MS)) n++;
  for (const e of r.events) if (inMs(e.lo, e.hi)) n++;
  return n;
}

describe("rollupRanges", () => {
  it("every instant of [since, until) is in exactly one part, every other instant in none", () => {
    const instant = fc.integer({ min: 0, max: 40 * DAY_MS });
    fc.assert(
      fc.property(
        fc.option(instant, { nil: undefined }),
        fc.option(instant, { nil: undefined }),
        instant,
        (since, until, t) => {
          const inside = (since === undefined || t >= since) && (until === undefined || t < until);
          expect(partsContaining(since, until, t)).toBe(inside ? 1 : 0);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it("edges that fall on boundaries read no raw events", () => {
    const r = rollupRanges(3 * DAY_MS, 10 * DAY_MS + 5 * HOUR_MS);
    expect(r.days).toEqual({ lo: 3, hi: 10 });
    expect(r.hours[0].lo >= r.hours[0].hi).toBe(true);
    expect(r.hours[1]).toEqual({ lo: 240, hi: 245 });
    for (const e of r.events) expect(e.lo >= e.hi).toBe(true);
  });

  it("raw events are read for at most two partial hours", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e13 }), fc.integer({ min: 0, max: 1e13 }), (a, b) => {
        const r = rollupRanges(Math.min(a, b), Math.max(a, b));
        const span = r.events.reduce((n, e) => n + Math.max(0, e.hi - e.lo), 0);
        expect(span).toBeLessThanOrEqual(2 * HOUR_MS);
      }),
    );
  });
});

describe("report shaping", () => {
  it("totals add up the groups; groups follow the asked order with no model first", () => {
    const row = (bottle: string, model: string, tokens: number) => ({
      bottle,
      model,
      events: 1,
      tokens,
      inputTokens: tokens,
      costUsd: 0.5,
    });
    const out = shapeReport(
      [row("b", "m", 1), row("a", "", 2), row("a", "m", 3)],
      ["bottle", "model"],
    );
    expect(out.totals).toMatchObject({ events: 3, tokens: 6, inputTokens: 6, costUsd: 1.5 });
    expect(out.groups.map((g) => [g.bottle, g.model, g.tokens])).toEqual([
      ["a", undefined, 2],
      ["a", "m", 3],
      ["b", "m", 1],
    ]);
    expect("model" in (out.groups[0] as object)).toBe(false);
  });

  it("burn series are zero-filled, one per bottle when asked, minutes oldest first", () => {
    const { since, until } = minuteGrid(Date.parse("2026-05-01T10:07:30Z"), 5);
    expect(new Date(since).toISOString()).toBe("2026-05-01T10:03:00.000Z");
    expect(until - since).toBe(5 * 60_000);
    const rows = [
      { bottle: "web", m: 4, events: 2, tokens: 30, cost: 0.1 },
      { bottle: "api", m: 0, events: 1, tokens: 5, cost: 0 },
    ];
    expect(burnSeries(rows, since, until, 5, true).series).toEqual([
      { bottle: "api", events: [1, 0, 0, 0, 0], tokens: [5, 0, 0, 0, 0], costUsd: [0, 0, 0, 0, 0] },
      {
        bottle: "web",
        events: [0, 0, 0, 0, 2],
        tokens: [0, 0, 0, 0, 30],
        costUsd: [0, 0, 0, 0, 0.1],
      },
    ]);
    expect(burnSeries([], since, until, 3, false).series).toEqual([
      { events: [0, 0, 0], tokens: [0, 0, 0], costUsd: [0, 0, 0] },
    ]);
  });
});
