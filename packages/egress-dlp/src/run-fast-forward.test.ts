import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { englishText, knownSecrets } from "../bench/corpus.ts";
import { createScanner, setRunFastForward } from "./scan.ts";

// Periodic floods of equal base64 runs (JWT headers chained by dots) take a fast path in
// encodedSegments: the same findings, the same blocking and the same work as run by run.
const secrets = knownSecrets(20);
const scanner = createScanner({ knownSecrets: secrets, fingerprintKey: "k" });
const tokensOnly = createScanner({ detectors: ["token_patterns"], fingerprintKey: "k" });
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const GITHUB = `ghp_${"Zq9Lm2Xw7Rt4Yp1Vn8Qa5Hk3Jd8Ws1Pq6Tz0B".slice(0, 36)}`;

function both(text: string) {
  const results = [];
  for (const on of [false, true]) {
    setRunFastForward(on);
    results.push({
      full: scanner.measure(text),
      tokens: tokensOnly.measure(text),
    });
  }
  return results;
}

afterEach(() => setRunFastForward(true));

describe("periodic base64 runs", () => {
  it("give the same findings, blocking and work as one run at a time (property)", () => {
    const unit = fc.constantFrom(
      "eyJhbGciOiJIUzI1NiJ9.",
      "eyJhbGciOiJIUzI1NiJ9..",
      "aGVsbG8gd29ybGQgaGVsbG8=.",
      "SGVsbG9Xb3JsZEhlbGxvV29y ",
      `${Buffer.from(GITHUB).toString("base64")}.`,
      "QUJDREVGR0hJSktMTU5PUA==|",
      "QUJDREVGR0hJSktMTU5PUA==...",
    );
    const edit = fc.record({
      at: fc.nat(),
      what: fc.constantFrom("", "x", ".", "..", "=", " ", "\n", JWT, GITHUB, "==", "A", "8"),
      drop: fc.nat({ max: 3 }),
    });
    fc.assert(
      fc.property(
        unit,
        fc.oneof(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 61, max: 900 })),
        fc.array(edit, { maxLength: 5 }),
        fc.constantFrom("", "lead text ", "eyJ"),
        (u, copies, edits, lead) => {
          let text = lead + u.repeat(copies);
          for (const e of edits) {
            const at = e.at % (text.length + 1);
            text = text.slice(0, at) + e.what + text.slice(at + e.drop);
          }
          const [off, on] = both(text);
          expect(on?.full).toEqual(off?.full);
          expect(on?.tokens).toEqual(off?.tokens);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("a run that differs from the one before only in its last character, or in the padding after it, is not taken as a copy", () => {
    const unit = "eyJhbGciOiJIUzI1NiJ9.";
    const flood = unit.repeat(40);
    // the last character of the 10th run changed
    const lastChar = `${flood.slice(0, 10 * 21 + 19)}8${flood.slice(10 * 21 + 20)}`;
    const padded = "QUJDREVGR0hJSktMTU5PUA==...".repeat(40);
    // the padding of the 20th run written as two dots: same period, a gap of 5 after it
    const unpadded = `${padded.slice(0, 20 * 27 + 22)}..${padded.slice(20 * 27 + 24)}`;
    for (const text of [lastChar, unpadded]) {
      const [off, on] = both(text);
      expect(on?.full).toEqual(off?.full);
      expect(on?.tokens).toEqual(off?.tokens);
    }
  });

  it("a 1 MiB JWT header flood costs the same work either way", () => {
    const flood = "eyJhbGciOiJIUzI1NiJ9.".repeat(50_000);
    const [off, on] = both(flood);
    expect(on?.full.work).toBe(off?.full.work);
    expect(on?.full.findings).toEqual(off?.full.findings);
    // a secret placed after the flood, base64-encoded as one more run, is still found
    const secret = secrets[3]?.value as string;
    const tail = `${flood}${Buffer.from(secret).toString("base64")}.${englishText(200)}`;
    const [a, b] = both(tail);
    expect(b?.full.findings).toEqual(a?.full.findings);
    expect(b?.full.findings.some((f) => f.detector === "known_secrets")).toBe(true);
  });
});
