import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScanner } from "./scan.ts";

// A long escape region is decoded in pieces. A token written entirely as escapes costs up to 11
// input characters per decoded character, so the pieces must overlap by more than the longest
// token pattern in *decoded* characters, wherever the region is cut.

const hex2 = (c: number) => c.toString(16).padStart(2, "0");
const KINDS: ReadonlyArray<readonly [string, (s: string) => string, string]> = [
  ["\\u00XX", (s) => [...s].map((c) => `\\u00${hex2(c.charCodeAt(0))}`).join(""), "escapes"],
  ["%XX", (s) => [...s].map((c) => `%${hex2(c.charCodeAt(0))}`).join(""), "escapes"],
  ["&#NN;", (s) => [...s].map((c) => `&#${c.charCodeAt(0)};`).join(""), "escapes"],
  ["&#x00HH;", (s) => [...s].map((c) => `&#x00${hex2(c.charCodeAt(0))};`).join(""), "escapes"],
  ["\\xHH", (s) => [...s].map((c) => `\\x${hex2(c.charCodeAt(0))}`).join(""), "escapes"],
  [
    "octal",
    (s) => [...s].map((c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`).join(""),
    "escapes",
  ],
  [
    "reversed \\u00XX",
    (s) => [...[...s].map((c) => `\\u00${hex2(c.charCodeAt(0))}`).join("")].reverse().join(""),
    "reversed+escapes",
  ],
  [
    "reversed %XX",
    (s) => [...[...s].map((c) => `%${hex2(c.charCodeAt(0))}`).join("")].reverse().join(""),
    "reversed+escapes",
  ],
];

function pseudoRandom(length: number, alphabet: string, seed: number): string {
  let s = seed;
  let out = "";
  while (out.length < length) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += alphabet[(s >>> 16) % alphabet.length];
  }
  return out;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// a 2,810-character JWT (its pattern needs all of it: it ends at a non-token character)
const jwt = `eyJ${pseudoRandom(700, B64URL, 3)}.eyJ${pseudoRandom(1800, B64URL, 5)}.${pseudoRandom(
  300,
  B64URL,
  7,
)}`;
// a 1,700-character one-line base64 PEM private key
const pemKey = `${Buffer.from("-----BEGIN PRIVATE KEY-----").toString("base64")}${pseudoRandom(1660, B64, 9)}`;
const filler = "The quick brown fox jumps over the lazy dog. ".repeat(6000).slice(0, 250_000);

describe("long escape regions are cut in decoded characters", () => {
  const scanner = createScanner({ detectors: ["token_patterns"] });

  it("the filler alone, in every escape kind, finds nothing", () => {
    for (const [name, encode] of KINDS)
      expect(scanner.scan(`<${encode(filler)}>`).findings, name).toEqual([]);
  });

  for (const [name, encode, kind] of KINDS) {
    it(`a long JWT and a one-line private key written as ${name} are found across every cut`, () => {
      const unit = encode("A").length;
      // where input-space pieces (64 Ki, 63,000 apart) and decoded-space pieces (131,040,
      // 113,400 apart) are cut, in decoded characters, with a token straddling each cut
      const cuts = [
        Math.floor(65_536 / unit),
        Math.floor(63_000 / unit),
        Math.floor(128_536 / unit),
        113_400,
        131_040,
        226_800,
      ];
      for (const [rule, token] of [
        ["jwt", jwt],
        ["private-key-base64", pemKey],
      ] as const) {
        for (const cut of cuts) {
          const at = Math.max(0, cut - Math.floor(token.length / 2));
          const decoded = `${filler.slice(0, at)} ${token} ${filler.slice(at + token.length + 2)}`;
          const region = encode(decoded);
          const text = `<${region}>`;
          const f = scanner.scan(text).findings.filter((x) => x.rule === rule);
          expect(f.length, `${name}: ${rule} across decoded ${cut}`).toBeGreaterThanOrEqual(1);
          expect(f.every((x) => x.encoding === `decoded:${kind}`)).toBe(true);
          // the findings cover the token's input span
          const reversed = kind === "reversed+escapes";
          const from = reversed
            ? 1 + region.length - (at + 1 + token.length) * unit
            : 1 + (at + 1) * unit;
          const to = from + token.length * unit;
          expect(Math.min(...f.map((x) => x.start))).toBeLessThanOrEqual(from);
          expect(Math.max(...f.map((x) => x.end))).toBeGreaterThanOrEqual(to);
        }
      }
    });
  }
});

describe("long escape regions of mixed escapes (property)", () => {
  const scanner = createScanner({ detectors: ["token_patterns"] });
  const token = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
  // units of every kind and length, astral characters (two UTF-16 units from one escape) and
  // plain region characters: chunks and pieces are cut at every phase of them
  const UNITS = [
    "\\u0041",
    "%42",
    "&#67;",
    "&#x1F600;",
    "&#128512",
    "\\x44",
    "\\105",
    "\\n",
    "q",
    "&#x0000041;",
    "\\uD83D\\uDE00",
  ];
  it("a token written in any escape kind anywhere in a long mixed region is found inside the input", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: UNITS.length - 1 }), { minLength: 8, maxLength: 64 }),
        fc.integer({ min: 0, max: KINDS.length - 3 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (pattern, kind, where) => {
          const unit = pattern.map((k) => UNITS[k]).join("");
          const region = unit.repeat(Math.ceil(140_000 / unit.length));
          const cut = Math.floor(where * region.length);
          // cut at a unit boundary: before an escape of the pattern
          const at = cut - (cut % unit.length);
          const encoded = (KINDS[kind] as (typeof KINDS)[number])[1](` ${token} `);
          const text = `<${region.slice(0, at)}${encoded}${region.slice(at)}>`;
          const f = scanner.scan(text).findings;
          for (const x of f) {
            expect(x.start).toBeGreaterThanOrEqual(0);
            expect(x.end).toBeLessThanOrEqual(text.length);
          }
          const hit = f.filter((x) => x.rule === "github-pat");
          expect(hit.length).toBeGreaterThanOrEqual(1);
          expect(Math.min(...hit.map((x) => x.start))).toBeLessThanOrEqual(1 + at);
          expect(Math.max(...hit.map((x) => x.end))).toBeGreaterThanOrEqual(
            1 + at + encoded.length,
          );
        },
      ),
      { numRuns: 25 },
    );
  });
});
