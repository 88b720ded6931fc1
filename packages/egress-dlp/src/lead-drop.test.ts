import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { englishText } from "../bench/corpus.ts";
import { TOKEN_RULES } from "./rules.ts";
import { createScanner } from "./scan.ts";

// With a known secret the keyword automaton runs inside the projection pass and its hits go
// through the hot hit loop, where hits after a character every rule of their keyword refuses are
// dropped before their tail is measured.
const scanner = createScanner({
  knownSecrets: [{ name: "K", value: "Zq9Lm2Xw7Rt4Yp1Vn8Qa5" }],
  fingerprintKey: "k",
});
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const jwtRule = TOKEN_RULES.find((r) => r.id === "jwt");

describe("hits after a character their rules refuse", () => {
  it("a JWT is reported after exactly the characters its own pattern accepts before it (property)", () => {
    expect(jwtRule).toBeDefined();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 126 }), fc.constantFrom("", "x", " "), (c, lead) => {
        const text = `${lead}${String.fromCharCode(c)}${JWT} `;
        const reference = new RegExp(jwtRule?.pattern.source ?? "", "g").test(text);
        const found = scanner
          .scan(text)
          .findings.some((f) => f.rule === "jwt" && f.encoding === "raw");
        expect(found).toBe(reference);
      }),
      { numRuns: 300 },
    );
  });

  it("a flood of eyJ (a hit every three characters, each after a J) costs about the work of plain text", () => {
    const flood = "eyJ".repeat(100_000);
    const work = scanner.measure(flood).work;
    expect(work).toBeLessThan(1.25 * scanner.measure(englishText(flood.length)).work);
    // and a JWT after the flood, on a boundary, is still found
    expect(scanner.scan(`${flood} ${JWT} `).findings.some((f) => f.rule === "jwt")).toBe(true);
  });
});
