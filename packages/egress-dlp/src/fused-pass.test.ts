import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AhoCorasick } from "./aho.ts";
import { createRunList, PAIR_MIN, projectFused } from "./known.ts";
import { TOKEN_RULES } from "./rules.ts";

const KEYWORDS = [...new Set(TOKEN_RULES.flatMap((r) => r.keywords))];
const AC = new AhoCorasick(KEYWORDS);

/** What the fused pass must produce, computed the plain way. */
interface Pass {
  proj: string;
  runs: string;
  hits: string;
}

function reference(text: string): Pass {
  const proj = text.replace(/[^A-Za-z0-9]/g, "");
  const runs: number[] = [];
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{16,}/g)) runs.push(m.index, m.index + m[0].length);
  const hits: number[] = [];
  AC.search(text, (id, end) => hits.push(id, end));
  return { proj, runs: runs.join(","), hits: hits.join(",") };
}

function fused(text: string): Pass {
  const proj = new Uint8Array(text.length);
  const runs = createRunList(4);
  const pass = { ac: AC.tables(), hits: new Int32Array(4), nHits: 0 };
  const m = projectFused(text, proj, runs, pass);
  return {
    proj: Buffer.from(proj.subarray(0, m)).toString("latin1"),
    runs: runs.at.subarray(0, runs.n).join(","),
    hits: pass.hits.subarray(0, pass.nHits).join(","),
  };
}

const PIECES = [
  ...KEYWORDS.slice(0, 60),
  ...KEYWORDS.slice(0, 20).map((k) => k.toUpperCase()),
  "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",
  "0123456789abcdef0123",
  "abcdefghijklmnop",
  "abcdefghijklmno",
  " ",
  "\n",
  "é",
  "中文",
  "😀",
  "\u200b",
  "%41",
  "\\u0041",
  "the quick brown fox ",
  "+/-_",
  "==",
];

describe("fused projection pass", () => {
  it("two streams give exactly what one plain pass gives: projection, base64 runs and keyword hits in order, wherever the split falls", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 3 * PAIR_MIN }),
        fc.constantFrom("prose", "base64", "letters"),
        (pieces, before, fill) => {
          const unit =
            fill === "prose" ? "a token of prose, " : fill === "base64" ? "QUJDRA" : "abcdefgh";
          const pad = (n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
          const middle = pieces.join("");
          // the planted pieces sit around the middle, where the second stream starts
          const after = Math.max(0, before + middle.length - 2 * PAIR_MIN);
          const text = pad(PAIR_MIN + before) + middle + pad(PAIR_MIN + after);
          expect(fused(text)).toEqual(reference(text));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a text without a split point near its middle, and short texts, run as one stream with the same result", () => {
    for (const text of [
      "QUJD".repeat(PAIR_MIN),
      `${"QUJD".repeat(PAIR_MIN)} ghp_ sk-ant-api token`,
      "ghp_abc sk secret",
      "",
      "a",
    ]) {
      expect(fused(text)).toEqual(reference(text));
    }
  });

  it("a keyword across the split point is reported once, by the stream it ends in", () => {
    const half = "x ".repeat(PAIR_MIN);
    for (let shift = -30; shift <= 30; shift++) {
      const text = `${half.slice(0, half.length + shift)}github_pat_ sk-ant-api03 hooks.slack.com ${half}`;
      const got = fused(text);
      expect(got).toEqual(reference(text));
      expect(got.hits.length).toBeGreaterThan(0);
    }
  });
});
