import { randomBytes } from "node:crypto";
import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { plausibleDeflate } from "./decode.ts";

/**
 * plausibleDeflate decides whether a blob is worth a zlib call. It must accept every deflate
 * stream of text (a refusal hides what the stream holds), and refuse nearly all random bytes
 * (each acceptance costs a zlib call: floods of random base64 runs paid one for 1 in 30).
 */
describe("plausibleDeflate", () => {
  it("accepts raw deflate of any printable text, short (fixed Huffman) or long (dynamic), repeats first included (property)", () => {
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."ab \n=xyzAB01_-"), minLength: 1, maxLength: 40 }),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 3000 }),
      fc
        .tuple(
          fc.constantFrom("a", "ab", "abc", " ", "\n"),
          fc.nat(30),
          fc.string({ maxLength: 60 }),
        )
        .map(([unit, n, rest]) => `${unit.repeat(n + 1)}${rest}`),
    );
    fc.assert(
      fc.property(text, fc.constantFrom(1, 6, 9), (t, level) => {
        const printable = t.replace(/[^\t\n\r\x20-\x7e]/g, "x");
        expect(plausibleDeflate(deflateRawSync(printable, { level }), 0)).toBe(true);
      }),
      { numRuns: 600 },
    );
  });

  it("refuses nearly all random bytes", () => {
    let passed = 0;
    for (let k = 0; k < 20_000; k++) if (plausibleDeflate(randomBytes(48), 0)) passed++;
    expect(passed).toBeLessThan(100); // about 40 expected; it was about 700 before the copy check
  });
});
