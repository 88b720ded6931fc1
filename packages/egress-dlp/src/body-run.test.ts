import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { englishText } from "../bench/corpus.ts";
import { TOKEN_RULES } from "./rules.ts";
import { createScanner } from "./scan.ts";

// A known secret makes the scanner collect base64 runs in its projection pass, which the
// bodyRun check reads; without one the check is off and the regex decides alone.
const withRuns = createScanner({
  knownSecrets: [{ name: "K", value: "Zq9Lm2Xw7Rt4Yp1Vn8Qa5" }],
  fingerprintKey: "k",
});
const withoutRuns = createScanner({ fingerprintKey: "k" });
const BODY =
  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvuNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ";

const rule = TOKEN_RULES.find((r) => r.id === "private-key");

function pemKeys(text: string): number {
  return withRuns.scan(text).findings.filter((f) => f.rule === "private-key").length;
}

describe("private-key bodyRun: hits with no 40-character base64 run in reach skip the regex", () => {
  it("the bound covers the longest prefix the pattern allows (four 200-character header lines, escaped line breaks, padding)", () => {
    expect(rule?.bodyRun).toBeDefined();
    const header = (k: number) =>
      `${"Abcdefghij-Klmnopqrs".slice(0, 20)}: ${`${k} `.repeat(100)}\\r\\n`;
    const longest = `-----BEGIN ${"RSA 1234".padEnd(24, "X")}PRIVATE KEY BLOCK-----${" ".repeat(8)}\\r\\n${header(1)}${header(2)}${header(3)}${header(4)}${",".repeat(8)}\\r\\n${'"'.repeat(4)}${BODY}`;
    // the pattern itself matches it from the keyword: the bound is what it reads up to the body
    const sticky = new RegExp(rule?.pattern.source ?? "", "y");
    expect(sticky.test(longest)).toBe(true);
    for (const around of [
      (s: string) => s,
      (s: string) => `{"k":"${s}"}`,
      (s: string) => `text ${s} more`,
    ]) {
      expect(pemKeys(around(longest))).toBe(1);
      expect(withoutRuns.scan(around(longest)).findings.some((f) => f.rule === "private-key")).toBe(
        true,
      );
    }
  });

  it("any header and body shape: found with the check exactly when found without it (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "),
        fc.array(fc.constantFrom("Proc-Type: 4,ENCRYPTED", "Comment: x", "Version: GnuPG v2"), {
          maxLength: 5,
        }),
        fc.constantFrom("\n", "\\n", "\r\n", "\\r\\n", " "),
        fc.integer({ min: 0, max: BODY.length }),
        fc.constantFrom("", "\n-----END PRIVATE KEY-----", " trailing words"),
        (kind, headers, lb, bodyLen, tail) => {
          const text = `x -----BEGIN ${kind}PRIVATE KEY-----${lb}${headers.map((h) => `${h}${lb}`).join("")}${BODY.slice(0, bodyLen)}${tail}`;
          const a = withRuns.scan(text).findings.some((f) => f.rule === "private-key");
          const b = withoutRuns.scan(text).findings.some((f) => f.rule === "private-key");
          expect(a).toBe(b);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a flood of BEGIN headers with 32-character bodies costs less work than twice plain text, and a real key after it is found", () => {
    const unit = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
    const flood = unit.repeat(Math.ceil((256 * 1024) / unit.length));
    const plain = englishText(flood.length);
    const work = withRuns.measure(flood).work;
    expect(work).toBeLessThan(2 * withRuns.measure(plain).work);
    expect(pemKeys(`${flood}-----BEGIN PRIVATE KEY-----\n${BODY}\n`)).toBe(1);
  });
});
