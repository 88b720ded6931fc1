import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { didYouMean, editDistance, suggest } from "./index.ts";

describe("editDistance", () => {
  it("counts inserts, deletes and substitutions", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("abc", "abc")).toBe(0);
  });
  it("is symmetric, zero only for equal strings, and bounded by the longer length (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        const d = editDistance(a, b);
        expect(d).toBe(editDistance(b, a));
        expect(d === 0).toBe(a === b);
        expect(d).toBeLessThanOrEqual(Math.max(a.length, b.length));
        expect(d).toBeGreaterThanOrEqual(Math.abs(a.length - b.length));
      }),
    );
  });
});

describe("suggest", () => {
  const keys = ["routes", "model_providers", "model_aliases", "budgets", "listen"];
  it("finds typos and prefixes, best first", () => {
    expect(suggest("rotues", keys)).toEqual(["routes"]);
    expect(suggest("model_provider", keys)[0]).toBe("model_providers");
    expect(suggest("xyzzy", keys)).toEqual([]);
  });
  it("never suggests the input itself, nor more than the limit, nor anything not offered", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.array(fc.string()),
        fc.integer({ min: 0, max: 4 }),
        (s, cs, n) => {
          const out = suggest(s, cs, n);
          expect(out.length).toBeLessThanOrEqual(n);
          for (const o of out) {
            expect(cs).toContain(o);
            expect(o).not.toBe(s);
          }
        },
      ),
    );
  });
});

describe("didYouMean", () => {
  it("words one, two and three suggestions", () => {
    expect(didYouMean([])).toBe("");
    expect(didYouMean(["a"])).toBe('did you mean "a"?');
    expect(didYouMean(["a", "b", "c"])).toBe('did you mean "a", "b" or "c"?');
  });
});

describe("typos people make", () => {
  it("a swap of two adjacent letters costs one edit; case and -/_ cost none", () => {
    expect(editDistance("ab", "ba")).toBe(1);
    expect(suggest("MODEL-ALIASES", ["model_aliases", "models"])).toEqual(["model_aliases"]);
    expect(suggest("buget", ["budget", "bucket"])[0]).toBe("budget");
  });
});
