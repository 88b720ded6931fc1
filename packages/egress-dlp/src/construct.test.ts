import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chatBody, pseudoToken } from "../bench/corpus.ts";
import { TOKEN_RULES, type TokenRule } from "./rules.ts";
import { createScanner, ruleTableBuilds } from "./scan.ts";

/**
 * Scanner construction: the tables derived from the rule set alone (keyword automaton, per-keyword
 * and per-rule tables) are built once per process and rule set; a second scanner builds only what
 * depends on its own known secrets and options, and finds exactly what a scanner with freshly
 * built tables finds.
 */
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const pick = (n: number, seed: number, alphabet = ALNUM): string => pseudoToken(n, alphabet, seed);
// Made-up values shaped like the real tokens.
const TOKENS = [
  `ghp_${pick(36, 1)}`,
  `AKIA${pick(16, 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}`,
  `xoxb-123456789012-123456789012-${pick(24, 3)}`,
  `sk_live_${pick(24, 4)}`,
  `sk-ant-api03-${pick(93, 5, `${ALNUM}_-`)}`,
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];
const SECRETS = [
  { name: "A", value: "Zq9Lm2Xw7Rt4Yp1Vn8Qa5" },
  { name: "B", value: "Hk3Jd8Ws1Pq6Tz0Bv4Nc7" },
];

describe("scanner construction", () => {
  it("a second scanner with other known secrets and options reuses the rule tables", () => {
    const before = ruleTableBuilds();
    createScanner({ knownSecrets: [SECRETS[0] as (typeof SECRETS)[0]] });
    const afterFirst = ruleTableBuilds();
    // at most one build: another scanner of this file may have built them already
    expect(afterFirst - before).toBeLessThanOrEqual(1);
    createScanner({ knownSecrets: [SECRETS[1] as (typeof SECRETS)[0]], maxMs: 500 });
    createScanner({ detectors: ["token_patterns"], fingerprintKey: "k" });
    createScanner({ rules: TOKEN_RULES });
    expect(ruleTableBuilds()).toBe(afterFirst);
  });

  it("another rule set builds its own tables once, and again after it is changed in place", () => {
    const custom: TokenRule[] = TOKEN_RULES.filter((r) => r.id !== "github-pat");
    const github = TOKEN_RULES.find((r) => r.id === "github-pat") as TokenRule;
    const text = `token ${TOKENS[0]} end`;
    const before = ruleTableBuilds();
    const a = createScanner({ rules: custom, detectors: ["token_patterns"] });
    expect(ruleTableBuilds()).toBe(before + 1);
    expect(a.scan(text).findings).toEqual([]);
    createScanner({ rules: custom });
    expect(ruleTableBuilds()).toBe(before + 1);
    custom.push(github);
    const b = createScanner({ rules: custom, detectors: ["token_patterns"] });
    expect(ruleTableBuilds()).toBe(before + 2);
    expect(b.scan(text).findings.map((f) => f.rule)).toEqual(["github-pat"]);
  });

  it("a scanner on reused tables finds exactly what one on freshly built tables finds (property)", () => {
    const shared = createScanner({ knownSecrets: SECRETS, fingerprintKey: "k" });
    const again = createScanner({ knownSecrets: SECRETS, fingerprintKey: "k" });
    const before = ruleTableBuilds();
    // a copy of the rules array is another key: its tables are built anew
    const fresh = createScanner({
      knownSecrets: SECRETS,
      fingerprintKey: "k",
      rules: [...TOKEN_RULES],
    });
    expect(ruleTableBuilds()).toBe(before + 1);
    const body = chatBody(6000, 3);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.nat({ max: body.length }),
            what: fc.integer({ min: 0, max: TOKENS.length + SECRETS.length - 1 }),
            form: fc.constantFrom("raw", "base64", "reversed", "lead"),
          }),
          { maxLength: 4 },
        ),
        (plants) => {
          let text = body;
          for (const p of plants) {
            const value =
              p.what < TOKENS.length
                ? (TOKENS[p.what] as string)
                : (SECRETS[p.what - TOKENS.length]?.value as string);
            // a JWT has a start boundary and no reversed form: raw or base64 only
            const form = value.startsWith("eyJ") && p.form !== "base64" ? "raw" : p.form;
            const shaped =
              form === "base64"
                ? Buffer.from(value).toString("base64")
                : form === "reversed"
                  ? [...value].reverse().join("")
                  : form === "lead"
                    ? `x${value}`
                    : value;
            const at = Math.min(p.at, text.length);
            text = `${text.slice(0, at)} ${shaped} ${text.slice(at)}`;
          }
          const expected = fresh.scan(text);
          expect(shared.scan(text)).toEqual(expected);
          expect(again.scan(text)).toEqual(expected);
          if (plants.length > 0) expect(expected.findings.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
