import { describe, expect, it } from "vitest";
import { boundedRegexProblem, looksSequential, TOKEN_RULES } from "./rules.ts";
import { createScanner } from "./scan.ts";

describe("token rules", () => {
  it("covers at least 40 providers with unique ids", () => {
    const ids = TOKEN_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    const providers = new Set(TOKEN_RULES.map((r) => r.provider));
    expect(providers.size).toBeGreaterThanOrEqual(40);
  });

  it.each(TOKEN_RULES.map((r) => [r.id, r] as const))(
    "%s is ReDoS-safe by construction",
    (_id, rule) => {
      // Every quantifier bounded and no quantifier inside a quantified group: each match attempt is
      // bounded by a constant, so a window costs O(window length).
      expect(boundedRegexProblem(rule.pattern.source)).toBeUndefined();
      for (const k of rule.keywords) expect(k).toBe(k.toLowerCase());
    },
  );

  it("prefilter hints are well-formed: afterAny on keyword-anchored rules, keywordMinTail on own keywords", () => {
    for (const r of TOKEN_RULES) {
      if (r.afterAny !== undefined) {
        expect(r.window, r.id).not.toBe(true);
        expect(r.afterAny.length, r.id).toBeGreaterThan(0);
      }
      for (const [k, n] of Object.entries(r.keywordMinTail ?? {})) {
        expect(r.keywords, r.id).toContain(k);
        expect(n, r.id).toBeGreaterThan(r.minTail ?? 0);
      }
    }
  });

  it("the checker rejects unbounded and nested quantifiers", () => {
    expect(boundedRegexProblem("a+")).toContain("unbounded");
    expect(boundedRegexProblem("a*")).toContain("unbounded");
    expect(boundedRegexProblem("a{3,}")).toContain("unbounded");
    expect(boundedRegexProblem("(a{1,3}){1,3}")).toContain("nested");
    expect(boundedRegexProblem("(?:a{1,3})?b")).toBeUndefined();
    expect(boundedRegexProblem("(?:ab|c){2}")).toBeUndefined();
    expect(boundedRegexProblem("[+*]{1,2}\\+")).toBeUndefined();
    expect(boundedRegexProblem("(a)\\1")).toContain("backreference");
  });

  it("finds each rule's sample and reports offsets of the secret only", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    const text = 'config = {"key": "ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg"}';
    const [f] = scanner.scan(text).findings;
    expect(f?.rule).toBe("github-pat");
    expect(text.slice(f?.start, f?.end)).toBe("ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg");
    expect(JSON.stringify(f)).not.toContain("XIxB7KMN");
  });

  it("skips placeholder passwords in URLs", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    expect(scanner.scan("https://user:password@example.com/").findings).toEqual([]);
    expect(scanner.scan("https://user:$" + "{PASSWORD}@example.com/").findings).toEqual([]);
    expect(scanner.scan("https://deploy:s3cur3K3y2024@example.com/").findings).toHaveLength(1);
  });
});

describe("looksSequential", () => {
  it("flags repeated or alphabetical stretches of 8 with a letter, not random tokens or digits alone", () => {
    for (const v of ["AAAAAAAA", "xabcdefghx", "aAbBcCdD", "aBcDeFgHiJ", "BBBBBBBBBBBB-x"])
      expect(looksSequential(v)).toBe(true);
    for (const v of [
      "4eC39HqLyjWDarjtT1zdp7dc",
      "hWay-wis3QpoSXob5gz_jyHmBQeyTg0l4IRsl4rnZw0tMbiT8h6X",
      "123456789012",
      "AAAA-AAAA",
      "abcdefg",
    ])
      expect(looksSequential(v)).toBe(false);
  });
});
