import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nearMiss } from "../bench/corpus.ts";
import { createScanner } from "./scan.ts";

describe("createScanner", () => {
  const scanner = createScanner({
    detectors: ["token_patterns", "known_secrets", "entropy"],
    knownSecrets: [{ name: "K", value: "Zq9-Lm2-Xw7-Rt4-Yp1-Vn8" }],
  });

  it("never throws and keeps findings inside the input (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 500 }), (text) => {
        const r = scanner.scan(text);
        for (const f of r.findings) {
          expect(f.start).toBeGreaterThanOrEqual(0);
          expect(f.end).toBeLessThanOrEqual(text.length);
          expect(f.start).toBeLessThan(f.end);
          expect(f.fingerprint).toMatch(/^[0-9a-f]{16}$/);
        }
        expect(r.blocked).toBe(r.findings.some((f) => f.severity === "block"));
      }),
      { numRuns: 300 },
    );
  });

  it("finds a known secret wherever it is inserted into random text (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), (a, b) => {
        const text = `${a} ${"Zq9-Lm2-Xw7-Rt4-Yp1-Vn8"} ${b}`;
        expect(scanner.scan(text).findings.some((f) => f.rule === "K")).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("entropy is opt-in and only warns", () => {
    const blob = "q8Z3vK1xW9mT4pL7sR2nB6yH0cF5dJ8gA3eU1iO9kM4";
    const warn = scanner.scan(`data=${blob}`).findings.find((f) => f.detector === "entropy");
    expect(warn?.severity).toBe("warn");
    expect(createScanner().scan(`data=${blob}`).findings).toEqual([]);
  });

  it("fails closed over budget: too large or too slow is a blocking budget finding", () => {
    const small = createScanner({ maxChars: 100 });
    expect(small.scan("x".repeat(101)).findings[0]).toMatchObject({
      detector: "budget",
      severity: "block",
    });
    const slow = createScanner({ maxMs: 0 });
    const r = slow.scan(`${"token ".repeat(2000)} ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV`);
    expect(r.blocked).toBe(true);
    expect(r.findings.some((f) => f.rule === "time-budget-exceeded")).toBe(true);
  });

  it("stays linear on near-miss keyword floods: four times the input, about four times the time", () => {
    const s = createScanner({ knownSecrets: [{ name: "K", value: "Zq9-Lm2-Xw7-Rt4-Yp1-Vn8" }] });
    const small = nearMiss(128 * 1024);
    const big = nearMiss(512 * 1024, 9);
    const time = (t: string) => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 7; i++) {
        const a = performance.now();
        s.scan(t);
        best = Math.min(best, performance.now() - a);
      }
      return best;
    };
    time(small);
    expect(time(big) / time(small)).toBeLessThan(10); // linear: about 4; quadratic: about 16
  });
});
