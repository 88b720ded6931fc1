import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isBudgetStoreError } from "./errors.ts";
import { parseBudgetFlag } from "./flag.ts";

describe("parseBudgetFlag", () => {
  it("parses providers, suffixes and windows into flag budgets for the bottle", () => {
    expect(parseBudgetFlag("anthropic=200k, openai=1.5m/daily,gemini=42/7d", "web")).toEqual([
      { scope: "bottle", key: "web", provider: "anthropic", tokens: 200_000, source: "flag" },
      {
        scope: "bottle",
        key: "web",
        provider: "openai",
        tokens: 1_500_000,
        source: "flag",
        window: "daily",
      },
      { scope: "bottle", key: "web", provider: "gemini", tokens: 42, source: "flag", window: "7d" },
    ]);
  });

  it("rejects malformed entries with E_USAGE naming the entry", () => {
    for (const bad of [
      "",
      "anthropic",
      "anthropic=",
      "=5",
      "a=5/hourly",
      "a=1.5",
      "a=5,a=6",
      "a=-1",
    ]) {
      expect(() => parseBudgetFlag(bad, "web"), bad).toThrow(
        expect.objectContaining({ code: "E_USAGE" }),
      );
    }
  });

  it("never throws anything but E_USAGE and round-trips what it accepts (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          const out = parseBudgetFlag(s, "b");
          for (const b of out) expect(Number.isSafeInteger(b.tokens)).toBe(true);
        } catch (err) {
          expect(isBudgetStoreError(err) && err.code).toBe("E_USAGE");
        }
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
        fc.integer({ min: 0, max: 1e12 }),
        fc.constantFrom(undefined, "daily", "monthly", "30d"),
        (provider, tokens, window) => {
          const text = `${provider}=${tokens}${window === undefined ? "" : `/${window}`}`;
          const [b] = parseBudgetFlag(text, "b");
          expect(b).toMatchObject({ provider, tokens });
          expect(b?.window).toBe(window);
        },
      ),
    );
  });
});
