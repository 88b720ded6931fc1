import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TOKEN_RULES } from "./rules.ts";
import { createScanner } from "./scan.ts";

const scanner = createScanner({
  knownSecrets: [{ name: "K", value: "Zq9Lm2Xw7Rt4Yp1Vn8Qa5" }],
  fingerprintKey: "k",
});
const jwt = TOKEN_RULES.find((r) => r.id === "jwt");

/** Positions covered by the JWT pattern run at every keyword hit, the plain way. */
function reference(text: string): Set<number> {
  const sticky = new RegExp(jwt?.pattern.source ?? "", "y");
  const covered = new Set<number>();
  const lower = text.toLowerCase();
  for (let p = lower.indexOf("eyj"); p !== -1; p = lower.indexOf("eyj", p + 1)) {
    sticky.lastIndex = p;
    if (sticky.test(text)) for (let k = p; k < sticky.lastIndex; k++) covered.add(k);
  }
  return covered;
}

function found(text: string): Set<number> {
  const covered = new Set<number>();
  for (const f of scanner.scan(text).findings) {
    if (f.rule !== "jwt" || f.encoding !== "raw") continue;
    for (let k = f.start; k < f.end; k++) covered.add(k);
  }
  return covered;
}

const PARTS = [
  "eyJhbGciOiJIUzI1NiJ9",
  "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
  "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
  "eyJshort",
  "abc",
  "eyJ",
  "EYJhbGciOiJIUzI1NiJ9",
];

describe("repeatMemo: a hit whose window equals the last match's window reuses its length", () => {
  it("one character changed anywhere in three periods of a flood: the findings follow the pattern", () => {
    const units = [
      "eyJhbGciOiJIUzI1NiJ9.",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c.",
      "eyJhbGciOiJIUzI1NiJ9.eyJhbGciOiJIUzI1NiJ8.",
    ];
    for (const unit of units) {
      const flood = unit.repeat(30);
      for (let q = unit.length * 10; q < unit.length * 13; q++) {
        for (const ch of [" ", ".", "J"]) {
          const text = `${flood.slice(0, q)}${ch}${flood.slice(q + 1)} `;
          expect([...found(text)].sort((a, b) => a - b)).toEqual(
            [...reference(text)].sort((a, b) => a - b),
          );
        }
      }
    }
  });

  it("JWT findings cover exactly what the pattern matches at every hit, in periodic floods and broken ones (property)", () => {
    expect(jwt?.repeatMemo).toBe(true);
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...PARTS), { minLength: 1, maxLength: 6 }),
        fc.array(fc.constantFrom(".", "..", " ", "-", "x", ""), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(" ", "A", ".", "-", "J")), { maxLength: 3 }),
        (parts, seps, repeats, edits) => {
          let unit = "";
          parts.forEach((p, k) => {
            unit += p + (seps[k % seps.length] as string);
          });
          let text = unit.repeat(repeats);
          // break the period here and there
          for (const [at, ch] of edits) {
            const k = at % text.length;
            text = text.slice(0, k) + ch + text.slice(k + 1);
          }
          text = `${text} `;
          expect([...found(text)].sort((a, b) => a - b)).toEqual(
            [...reference(text)].sort((a, b) => a - b),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
