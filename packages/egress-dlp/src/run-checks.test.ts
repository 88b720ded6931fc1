import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  denseChar,
  escapeRegionEnd,
  findNeedle,
  isEscapeRegionChar,
  plausibleHexBinary,
  utf16Base64,
} from "./scan.ts";

/** The definition plausibleHexBinary had (two strings and two regular expressions a call). */
function oracle(text: string, i: number): boolean {
  const head = text.slice(i, i + 8).toLowerCase();
  return (
    head.startsWith("1f8b") ||
    head.startsWith("78") ||
    head.startsWith("504b0304") ||
    head.startsWith("fffe") ||
    head.startsWith("feff") ||
    /^(?:[2-7][0-9a-f]00){2}/.test(head) ||
    /^(?:00[2-7][0-9a-f]){2}/.test(head)
  );
}

describe("plausibleHexBinary (runs' container check, allocation-free)", () => {
  it("agrees with the string definition on hex-like text, at any offset and near the end (property)", () => {
    const unit = fc.constantFrom(..."0123456789abcdefABCDEF0078bfe4g ");
    const prefix = fc.constantFrom(
      "",
      "1f8b",
      "1F8B",
      "78",
      "504b0304",
      "fffe",
      "FEFF",
      "4100",
      "0041",
      "00",
    );
    fc.assert(
      fc.property(prefix, fc.string({ unit, maxLength: 12 }), fc.nat(4), (p, rest, at) => {
        const text = `${"x".repeat(at)}${p}${rest}`;
        for (let i = 0; i <= text.length; i++)
          expect(plausibleHexBinary(text, i)).toBe(oracle(text, i));
      }),
      { numRuns: 3000 },
    );
  });

  it("knows each container head, and refuses random hex and base64", () => {
    for (const head of [
      "1f8b0800",
      "78da0102",
      "504b0304",
      "fffe4100",
      "feff0041",
      "41004200",
      "00410042",
      "4A004B00",
    ]) {
      expect(plausibleHexBinary(`${head}abcdef`, 0)).toBe(true);
    }
    for (const head of ["504b0305", "41004201", "00410142", "81004200", "QUJDREVG", "1f8"]) {
      expect(plausibleHexBinary(head, 0)).toBe(false);
    }
  });
});

describe("findNeedle and denseChar (a regex instead of indexOf where the first character is dense)", () => {
  it("finds what indexOf finds, either way, in sparse and dense texts, from any start (property)", () => {
    const cases: [string, RegExp][] = [
      ["000", /000/g],
      ["u\\", /u\\/g],
    ];
    const unit = fc.constantFrom(
      "0",
      "00",
      "000",
      "u",
      "\\",
      "u\\",
      "a",
      "\\u005c",
      "x".repeat(40),
    );
    fc.assert(
      fc.property(
        fc.array(unit, { maxLength: 400 }),
        fc.nat(200),
        fc.nat(1),
        (units, from, which) => {
          const [needle, re] = cases[which] as [string, RegExp];
          const text = units.join("");
          const want = text.indexOf(needle, from);
          expect(findNeedle(text, needle, from, re, false)).toBe(want);
          expect(findNeedle(text, needle, from, re, true)).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("calls a flood of the first character dense, and prose or base64 not", () => {
    expect(denseChar("\\u005c".repeat(5000), 48)).toBe(true);
    expect(denseChar("0a".repeat(5000), 48)).toBe(true);
    expect(
      denseChar("the cat sat on the mat in 2024, then more words followed it ".repeat(200), 48),
    ).toBe(false);
    expect(
      denseChar(
        Buffer.from(
          "a".repeat(9000).replace(/a/g, (_, k) => String.fromCharCode(32 + (k % 90))),
        ).toString("base64"),
        48,
      ),
    ).toBe(false);
    expect(denseChar("0".repeat(4000), 48)).toBe(false); // short texts: the native search
  });
});

describe("escapeRegionEnd", () => {
  it("stops at the first character isEscapeRegionChar refuses, for every UTF-16 code unit", () => {
    for (let c = 0; c < 65536; c++) {
      const text = `ab${String.fromCharCode(c)}cd`;
      expect(escapeRegionEnd(text, 0)).toBe(isEscapeRegionChar(c) ? 5 : 2);
    }
  });
});

describe("utf16Base64 (stops once a quarter of its groups have missed both ways)", () => {
  /** The definition before the early stop. */
  function oracle(text: string, i: number, j: number): boolean {
    if (j - i < 16) return false;
    const idx = (c: number) =>
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".indexOf(
        String.fromCharCode(c),
      );
    let odd = 0;
    let even = 0;
    let groups = 0;
    for (let k = i; k + 8 <= j && groups < 8; k += 8, groups++) {
      const c0 = idx(text.charCodeAt(k));
      const c1 = idx(text.charCodeAt(k + 1));
      const c2 = idx(text.charCodeAt(k + 2));
      const c3 = idx(text.charCodeAt(k + 3));
      if ((c1 >= 0 && (c1 & 15) === 0) || (c2 >= 0 && c2 >> 2 === 0)) odd++;
      if (c0 === 0 || c3 === 0) even++;
    }
    return groups >= 2 && (odd >= groups * 0.75 || even >= groups * 0.75);
  }

  it("agrees with its definition on random, UTF-16-like and mixed runs (property)", () => {
    const unit = fc.constantFrom("AGEA", "YQBi", "AAAA", "QUJD", "x9Zq", "AB", "Q", "/+", "aGVs");
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 40 }), fc.nat(6), (units, i) => {
        const text = units.join("");
        for (let j = i; j <= text.length; j += 3)
          expect(utf16Base64(text, i, j)).toBe(oracle(text, i, j));
      }),
      { numRuns: 1500 },
    );
    const u16 = Buffer.from("hello token ghp_abc and more text here", "utf16le").toString("base64");
    expect(utf16Base64(u16, 0, u16.length)).toBe(true);
  });
});
