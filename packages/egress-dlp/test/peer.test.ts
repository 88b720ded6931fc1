import { describe, expect, it } from "vitest";
import { createScanner } from "../src/scan.ts";
import {
  formatScore,
  loadNoseyParker,
  loadNoseyParkerRules,
  loadSecretlint,
  score,
  translateRustRegex,
} from "./peer.ts";

// Peer suites live in ../shared/peer relative to the repository root; loading throws (and the
// test fails) when they are missing.
describe("peer suites", () => {
  const scanner = createScanner({ detectors: ["token_patterns"] });
  const scan = (text: string) => scanner.scan(text).findings;

  it("Nosey Parker: >= 95% of covered examples detected, <= 5% negatives reported as their kind or provider", () => {
    const cases = loadNoseyParker();
    expect(cases.length).toBeGreaterThan(400);
    const peerRules = loadNoseyParkerRules();
    // nearly every peer pattern must be usable, or the per-provider exclusion would be hollow
    expect(peerRules.filter((r) => r.regex).length).toBeGreaterThan(peerRules.length * 0.95);
    const s = score(cases, scan, peerRules);
    process.stderr.write(`${formatScore("noseyparker", s)}\n`);
    expect(s.covered.positives).toBeGreaterThan(150);
    expect(s.covered.detected / s.covered.positives).toBeGreaterThanOrEqual(0.95);
    expect(s.covered.falsePositives / s.covered.negatives).toBeLessThanOrEqual(0.05);
    expect(s.covered.providerFalsePositives / s.covered.negatives).toBeLessThanOrEqual(0.05);
    // every exclusion names the Nosey Parker rule that claims the span
    for (const e of s.excluded) expect(e).toMatch(/^np\.[\w.]+[!#]\d+: [\w-]+ = np\./);
  });

  it("translates Rust verbose-mode patterns for re2js and refuses what it cannot translate", () => {
    const t = translateRustRegex("(?xi)\n  ab \\  c  # comment\n  [ 0-9 \\# ]{2}\n");
    expect(t).toEqual({ source: "(?i)ab c[0-9#]{2}" });
    expect(translateRustRegex("(?x) a (?x: b )")).toHaveProperty("problem");
    expect(translateRustRegex("(?x)\n (a) (?# the `key` | part )\n b{2,1024}")).toEqual({
      source: "(a)b{2,1000}",
    });
    expect(translateRustRegex("a(?<=b)")).toHaveProperty("problem");
    expect(translateRustRegex("(?i:token)\\s*(?P<v>\\d+)\\z")).toEqual({
      source: "(?i:token)\\s*(?P<v>\\d+)\\z",
    });
  });

  it("a same-provider report is excluded only when a Nosey Parker rule of that provider claims its span", () => {
    const rules = loadNoseyParkerRules();
    const userToken =
      "xoxp-513768634356-513201028496-513937500594-185e196ace562dd6443b5d29b1d817c2";
    const neg = (text: string) => ({
      suite: "noseyparker" as const,
      source: "np.slack.2",
      provider: "slack",
      kinds: ["slack-bot-token"],
      name: "np.slack.2!x",
      text,
      positive: false,
    });
    const finding = (start: number, end: number) => ({
      detector: "token_patterns" as const,
      rule: "slack-user-token",
      surface: "body",
      start,
      end,
      severity: "block" as const,
      fingerprint: "",
    });
    // np.slack.4 (user tokens) claims the span: excluded, listed
    const a = score([neg(`t ${userToken}`)], () => [finding(2, 2 + userToken.length)], rules);
    expect(a.covered.providerFalsePositives).toBe(0);
    expect(a.excluded).toEqual(["np.slack.2!x: slack-user-token = np.slack.4"]);
    // nothing of Nosey Parker's matches there: a per-provider false positive
    const b = score([neg("t xoxp-1-2-3 nope")], () => [finding(2, 12)], rules);
    expect(b.covered.providerFalsePositives).toBe(1);
    expect(b.providerFalsePositives).toEqual(["np.slack.2!x"]);
  });

  it("secretlint recommend: >= 95% of ng inputs detected, <= 5% of ok inputs reported", () => {
    const cases = loadSecretlint();
    const s = score(cases, scan);
    process.stderr.write(`${formatScore("secretlint", s)}\n`);
    expect(s.covered.positives).toBeGreaterThan(40);
    expect(s.covered.detected / s.covered.positives).toBeGreaterThanOrEqual(0.95);
    expect(s.covered.falsePositives / s.covered.negatives).toBeLessThanOrEqual(0.05);
  });
});

describe("prefilter guards", () => {
  it("minTail/keywordMinTail/minHead/afterAny never change what the rules find on the peer corpora", async () => {
    const { TOKEN_RULES } = await import("../src/rules.ts");
    const unguarded = TOKEN_RULES.map(
      ({ minTail: _t, minHead: _h, keywordMinTail: _k, afterAny: _a, ...rule }) => rule,
    );
    const guardedScanner = createScanner({ detectors: ["token_patterns"] });
    const plainScanner = createScanner({ detectors: ["token_patterns"], rules: unguarded });
    const key = (f: { rule: string; start: number; end: number }) =>
      `${f.rule}@${f.start}-${f.end}`;
    for (const c of [...loadNoseyParker(), ...loadSecretlint()]) {
      const a = guardedScanner.scan(c.text).findings.map(key).sort();
      const b = plainScanner.scan(c.text).findings.map(key).sort();
      expect(a, c.name).toEqual(b);
    }
  });
});
