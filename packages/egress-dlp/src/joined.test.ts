import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScanner } from "./scan.ts";

const scanner = createScanner({ fingerprintKey: "k" });
const TOKEN = "ghp_Zq9Lm2Xw7Rt4Yp1Vn8Qa5Bc3Dk6Fh0Jg2Ms4T";

describe("JSON whitespace escapes inside a token", () => {
  it("a token cut by \\n, \\t or \\r every few characters is found after any lead-in of escapes that start nothing (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("\\n", "\\t", "\\r"),
        fc.integer({ min: 2, max: 9 }),
        fc.constantFrom("", "\\u005c", "\\\\", "\\n\\n", ". \\nA", "\\x41", "word "),
        fc.integer({ min: 0, max: 3000 }),
        (esc, every, lead, repeats) => {
          let cut = "";
          for (let i = 0; i < TOKEN.length; i += every) cut += `${TOKEN.slice(i, i + every)}${esc}`;
          const text = `${lead.repeat(repeats)} ${cut.slice(0, -esc.length)} done`;
          const found = scanner.scan(text).findings.some((f) => f.rule.startsWith("github"));
          expect(found).toBe(true);
        },
      ),
      { numRuns: 120 },
    );
  });
});
