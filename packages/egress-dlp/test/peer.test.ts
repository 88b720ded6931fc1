import { describe, expect, it } from "vitest";
import { createScanner } from "../src/scan.ts";
import { formatScore, loadNoseyParker, loadSecretlint, score } from "./peer.ts";

// Peer suites live in ../shared/peer relative to the repository root; loading throws (and the
// test fails) when they are missing.
describe("peer suites", () => {
  const scanner = createScanner({ detectors: ["token_patterns"] });
  const scan = (text: string) => scanner.scan(text).findings;

  it("Nosey Parker: >= 95% of covered examples detected, <= 5% negatives reported as their kind", () => {
    const cases = loadNoseyParker();
    expect(cases.length).toBeGreaterThan(400);
    const s = score(cases, scan);
    process.stderr.write(`${formatScore("noseyparker", s)}\n`);
    expect(s.covered.positives).toBeGreaterThan(150);
    expect(s.covered.detected / s.covered.positives).toBeGreaterThanOrEqual(0.95);
    expect(s.covered.falsePositives / s.covered.negatives).toBeLessThanOrEqual(0.05);
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
  it("minTail/minHead never change what the rules find on the peer corpora", async () => {
    const { TOKEN_RULES } = await import("../src/rules.ts");
    const unguarded = TOKEN_RULES.map(({ minTail: _t, minHead: _h, ...rule }) => rule);
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
