import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { nearMiss } from "../bench/corpus.ts";
import type { TokenRule } from "./rules.ts";
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

  it("blocks a scan that ends past its deadline between two clock reads (a descheduled process)", () => {
    // A small clean body does less work than one clock-read interval: the only read after the
    // budget's start is the one when the scan ends, and the clock has jumped past the deadline.
    let now = 0;
    const clock = () => now;
    const s = createScanner({ maxMs: 50, clock });
    const reads: number[] = [];
    const late = createScanner({
      maxMs: 50,
      clock: () => {
        reads.push(now);
        const t = now;
        now += 1000;
        return t;
      },
    });
    expect(s.scan("a clean sentence").blocked).toBe(false);
    reads.length = 0; // the scanner's own warm-up scan read it too
    const r = late.measure("a clean sentence");
    expect(reads.length).toBe(2);
    expect(r.blocked).toBe(true);
    expect(r.findings.map((f) => f.rule)).toEqual(["time-budget-exceeded"]);
  });

  it("stays linear on near-miss keyword floods: four times the input, about four times the work", () => {
    // counted work (characters visited by every stage), not time: a busy machine cannot fail it
    const s = createScanner({ knownSecrets: [{ name: "K", value: "Zq9-Lm2-Xw7-Rt4-Yp1-Vn8" }] });
    const small = s.measure(nearMiss(128 * 1024));
    const big = s.measure(nearMiss(512 * 1024, 9));
    expect(small.blocked).toBe(false);
    expect(big.blocked).toBe(false);
    expect(big.work / small.work).toBeLessThan(5); // linear: about 4; quadratic: about 16
  });
});

describe("keyword-hit prefilters", () => {
  /** exec calls made on regexes with this source while `run` runs. */
  function execCalls(source: string, run: () => void): number {
    const spy = vi.spyOn(RegExp.prototype, "exec");
    try {
      run();
      return spy.mock.contexts.filter((re) => (re as RegExp).source === source).length;
    } finally {
      spy.mockRestore();
    }
  }
  const url: TokenRule = {
    id: "test-url",
    provider: "test",
    description: "user:password@host after a zzproto:// keyword",
    keywords: ["zzproto://"],
    pattern: /zzproto:\/\/([a-z]{1,20}):([a-z0-9]{3,20})@[a-z.]{1,40}/g,
    secret: 2,
    maxLength: 100,
    afterAny: "@",
  };
  const sid: TokenRule = {
    id: "test-sid",
    provider: "test",
    description: "zq + 20 hex, or zqctx: + 20 hex",
    keywords: ["zq", "zqctx"],
    pattern: /zq[0-9a-f]{20}(?![0-9a-f])|zqctx:\s?zq[0-9a-f]{20}/g,
    maxLength: 40,
    keywordMinTail: { zq: 20 },
  };
  const scanner = createScanner({ detectors: ["token_patterns"], rules: [url, sid] });

  it("afterAny: hits with no such character within maxLength never run the regex", () => {
    const flood = "zzproto://user:pass ".repeat(500);
    expect(execCalls(url.pattern.source, () => scanner.scan(flood))).toBe(0);
    const real = `${flood}zzproto://user:hunter2@db.example`;
    const found = scanner.scan(real).findings;
    expect(found.map((f) => f.rule)).toEqual(["test-url"]);
    expect(real.slice(found[0]?.start, found[0]?.end)).toBe("hunter2");
  });

  it("keywordMinTail: a keyword's own tail bound applies to that keyword only", () => {
    const flood = "zq12ab zq9 zqff00 ".repeat(300);
    expect(execCalls(sid.pattern.source, () => scanner.scan(flood))).toBe(0);
    const hex = "0123456789abcdef0123";
    expect(scanner.scan(`${flood} zq${hex} `).findings.map((f) => f.rule)).toEqual(["test-sid"]);
    expect(scanner.scan(`zqctx: zq${hex}`).findings.length).toBeGreaterThan(0);
  });

  it("a start boundary: hits glued to a word character never run the regex, others still match", () => {
    const bounded: TokenRule = {
      id: "test-bounded",
      provider: "test",
      description: "zzk_ + 20 letters on a word boundary",
      keywords: ["zzk_"],
      pattern: /(?<![A-Za-z0-9_])zzk_[a-z]{20}(?![a-z])/g,
      maxLength: 24,
      minTail: 20,
    };
    const s = createScanner({ detectors: ["token_patterns"], rules: [bounded] });
    const attempts = (text: string): number => {
      const spy = vi.spyOn(RegExp.prototype, "test");
      try {
        s.scan(text);
        return spy.mock.contexts.filter((re) => (re as RegExp).source === bounded.pattern.source)
          .length;
      } finally {
        spy.mockRestore();
      }
    };
    const value = "zzk_abcdefghijklmnopqrst";
    expect(attempts(`x${value} `.repeat(300))).toBe(0);
    expect(attempts(`_${value} `.repeat(300))).toBe(0);
    expect(attempts(` ${value}`)).toBe(1);
    for (const ok of [value, ` ${value}`, `-${value}`, `"${value}"`, `.${value}`]) {
      expect(s.scan(ok).findings.map((f) => f.rule)).toEqual(["test-bounded"]);
    }
    for (const glued of [`x${value}`, `9${value}`, `_${value}`]) {
      expect(s.scan(glued).findings).toEqual([]);
    }
    // the dashed boundary refuses a dash too
    const dashed: TokenRule = {
      ...bounded,
      id: "test-dashed",
      pattern: /(?<![A-Za-z0-9_-])zzk_[a-z]{20}(?![a-z])/g,
    };
    const d = createScanner({ detectors: ["token_patterns"], rules: [dashed] });
    expect(d.scan(`-${value}`).findings).toEqual([]);
    expect(d.scan(`.${value}`).findings.map((f) => f.rule)).toEqual(["test-dashed"]);
  });

  it("overlapping keyword hits read each tail character once", () => {
    // "zq" repeated: every hit's tail is the rest of one long run; the memo makes this linear
    const s = createScanner({ detectors: ["token_patterns"], rules: [sid] });
    const work = (n: number) => s.measure("zq".repeat(n)).work;
    expect(work(160_000) / work(20_000)).toBeLessThan(10); // linear: about 8; quadratic: 64
  });
});

describe("floods of small decoded pieces and overlapping matches", () => {
  const token = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  it("a token in one of many small base64 runs is reported at that run's span", () => {
    const scanner = createScanner();
    const runs = Array.from({ length: 400 }, (_, i) => b64(`{"alg":"HS256","n":${i}}`));
    const at = 237;
    runs[at] = b64(`{"t":"${token}"}`);
    const text = runs.join(" ");
    const start = runs.slice(0, at).join(" ").length + 1;
    const r = scanner.scan(text);
    const f = r.findings.find((x) => x.rule === "github-pat");
    expect(f).toMatchObject({ start, end: start + (runs[at] as string).length });
    expect(f?.encoding).toBe("decoded:base64");
    expect(f?.fingerprint).toBe(scanner.fingerprint(token));
    // the same with the token in the first and in the last run
    for (const k of [0, runs.length - 1]) {
      const moved = runs.slice();
      moved[at] = runs[(at + 1) % runs.length] as string;
      moved[k] = runs[at] as string;
      const s = moved.slice(0, k).join(" ").length + (k === 0 ? 0 : 1);
      const g = scanner.scan(moved.join(" ")).findings.find((x) => x.rule === "github-pat");
      expect(g).toMatchObject({ start: s, end: s + (runs[at] as string).length });
    }
  });

  it("a run repeated back to back is decoded once, and a finding in it covers every copy", () => {
    const scanner = createScanner();
    const piece = b64(`{"t":"${token}"}`);
    const flood = Array.from({ length: 300 }, () => piece).join(".");
    const r = scanner.measure(flood);
    const found = r.findings.filter((f) => f.rule === "github-pat");
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ start: 0, end: flood.length, encoding: "decoded:base64" });
    // a different run inside a flood of equal ones keeps its own span, and the copies after it
    // are their own piece again
    const filler = b64(`{"alg":"HS256","typ":"JWT"}`);
    const before = Array.from({ length: 200 }, () => filler).join(".");
    const text = `${before}.${piece}.${before}`;
    const g = scanner.scan(text).findings.filter((f) => f.rule === "github-pat");
    expect(g).toEqual([
      expect.objectContaining({ start: before.length + 1, end: before.length + 1 + piece.length }),
    ]);
    // two equal runs far apart are two pieces: a finding does not span the text between them
    const apart = `${piece} ${"lorem ipsum ".repeat(20)}${piece}`;
    const h = scanner.scan(apart).findings.filter((f) => f.rule === "github-pat");
    expect(h.map((f) => [f.start, f.end])).toEqual([
      [0, piece.length],
      [apart.length - piece.length, apart.length],
    ]);
  });

  it("a long escape region repeating one unit decodes and scans each distinct piece once", () => {
    const scanner = createScanner();
    const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("");
    const same = "%25".repeat(349_525);
    let distinct = "";
    for (let k = 0; distinct.length < same.length; k++)
      distinct += `%2${"0123456789abcdef"[(k * 7 + (k >> 3)) % 16]}`;
    expect(distinct.length).toBe(same.length);
    const a = scanner.measure(same);
    const b = scanner.measure(distinct);
    expect(a.findings).toEqual([]);
    expect(b.findings).toEqual([]);
    // counted work: the region is decoded once either way, then cut into pieces of decoded
    // characters; equal pieces reuse the findings of the first, distinct ones are scanned each
    expect(a.work).toBeLessThan(b.work);
    expect(b.work).toBeLessThan(16 * distinct.length);
    // a token in one piece of such a flood, forwards and reversed, is found at its own piece(s),
    // not over the whole region and not lost among the equal pieces
    const enc = pct(token);
    for (const [inner, encoding] of [
      [enc, "decoded:escapes"],
      [[...enc].reverse().join(""), "decoded:reversed+escapes"],
    ] as const) {
      for (const copies of [20, 150_000, 349_000]) {
        const text = `${"%25".repeat(copies)}${inner}${"%25".repeat(349_525 - copies)}`;
        const at = text.indexOf(inner);
        const f = scanner.scan(text).findings.filter((x) => x.rule === "github-pat");
        expect(f).toHaveLength(1);
        expect(f[0]?.encoding).toBe(encoding);
        expect(f[0]?.start).toBeLessThanOrEqual(at);
        expect(f[0]?.end).toBeGreaterThanOrEqual(at + inner.length);
        // a piece is 131,040 decoded characters, 3 input characters each here
        expect((f[0]?.end ?? 0) - (f[0]?.start ?? 0)).toBeLessThanOrEqual(3 * 131_040);
      }
    }
  });

  it("a long base64url run (beyond the short-run decoder) is read with its URL-safe alphabet", () => {
    const scanner = createScanner();
    for (const filler of ["?>~".repeat(2000), "\u00ff\u00fe?".repeat(2000)]) {
      const encoded = Buffer.from(`${filler} ${token} ${filler}`, "latin1").toString("base64url");
      expect(encoded.length).toBeGreaterThan(4096);
      expect(/[-_]/.test(encoded)).toBe(true);
      const f = scanner.scan(`x ${encoded} y`).findings.filter((x) => x.rule === "github-pat");
      expect(f).toEqual([expect.objectContaining({ start: 2, end: 2 + encoded.length })]);
    }
  });

  it("a run equal to an earlier one that came to nothing is not looked at again", () => {
    const scanner = createScanner();
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const same = Array.from({ length: 2000 }, () => "H4sIAAAAAAAAAAAA").join(" ");
    const distinct = Array.from(
      { length: 2000 },
      (_, k) => `H4sIAAAAAAAAAA${alphabet[k % 64]}${alphabet[(k >> 6) % 64]}`,
    ).join(" ");
    expect(same.length).toBe(distinct.length);
    const a = scanner.measure(same);
    const b = scanner.measure(distinct);
    expect(a.findings).toEqual([]);
    expect(b.findings).toEqual([]);
    // counted work: the copies cost a comparison each, the distinct runs a look each
    expect(a.work).toBeLessThan(b.work * 0.85);
    // what follows the flood is still decoded: a base64'd token, and the flood's own run with a
    // token after it (a different run)
    const piece = b64(`{"t":"${token}"}`);
    for (const text of [`${same} ${piece}`, `${same}\n${same} ${piece} ${same}`]) {
      const f = scanner.scan(text).findings.filter((x) => x.rule === "github-pat");
      const at = text.indexOf(piece);
      expect(f).toEqual([expect.objectContaining({ start: at, end: at + piece.length })]);
    }
  });

  it("a base64 run that ends the text is decoded, with and without a known-secret index", () => {
    const withIndex = createScanner({
      knownSecrets: [{ name: "K", value: "Zq9-Lm2-Xw7-Rt4-Yp1-Vn8" }],
    });
    const without = createScanner();
    // 42 bytes: no padding, so the run really is the last character of the text
    const inner = `t=${token}`;
    expect(inner.length % 3).toBe(0);
    const encoded = b64(inner);
    expect(encoded.endsWith("=")).toBe(false);
    for (const s of [withIndex, without]) {
      for (const text of [encoded, `body: ${encoded}`]) {
        const f = s.scan(text).findings.find((x) => x.rule === "github-pat");
        expect(f?.encoding).toBe("decoded:base64");
        expect(f?.end).toBe(text.length);
      }
    }
  });

  it("chained JWT-shaped matches become one finding, fingerprinted once, within budget", () => {
    const scanner = createScanner();
    const flood = "eyJhbGciOiJIUzI1NiJ9.".repeat(20_000);
    const r = scanner.measure(flood);
    const jwt = r.findings.filter((f) => f.rule === "jwt");
    expect(jwt).toHaveLength(1);
    expect(jwt[0]?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(r.findings.some((f) => f.detector === "budget")).toBe(false);
    // linear: four times the flood, about four times the work
    expect(scanner.measure(flood.repeat(4)).work / r.work).toBeLessThan(5);
  });
});

describe("a character stuck to a prefix-anchored token", () => {
  const scanner = createScanner({ detectors: ["token_patterns"] });
  const rules = (text: string) => scanner.scan(text).findings.map((f) => f.rule);

  it("hides no random token, but a stuck documentation placeholder is not a token", () => {
    const random = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    for (const t of [`x${random}`, `foo${random}`, `1${random}1`, random])
      expect(rules(t)).toContain("stripe-key");
    // the fixtures secretlint keeps as negatives: a prefix inside a word, a fake value
    for (const t of [
      "xsk_live_AAAAAAAAAAAAAAAAAAAAAAAA",
      "foosk_test_BBBBBBBBBBBBBBBBBBBBBBBB",
      "wordgsk_aBcDeFgHiJkLmNoPqRsT1234567890abcdefghijklmnopqrstuv",
      "xcfat_aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStT03fa099b",
      "abctskey-api-AAAAAAAAAAAA-BBBBBBBBBBBBBBBBBBBBBBBB",
    ])
      expect(rules(t)).toEqual([]);
    // on a word boundary a token is reported whatever its value
    expect(rules("sk_live_AAAAAAAAAAAAAAAAAAAAAAAA")).toContain("stripe-key");
    expect(rules("0tskey-api-AAAAAAAAAAAA-BBBBBBBBBBBBBBBBBBBBBBBB")).toContain("tailscale-key");
  });
});

describe("separated tokens and sampling", () => {
  it("a token with a separator between its characters is found at every offset", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    // the shortest kind of token (20 characters) spreads over 39: every sample step must see it
    const token = "AKIAZ7Q3XK5LMPR2TWD4";
    for (const sep of ["-", " ", ".", "|"]) {
      const spread = [...token].join(sep);
      for (let at = 0; at < 30; at++) {
        const text = `${"see the notes ".slice(0, at % 14)}${"word ".repeat(at)}${spread} and so on`;
        const rules = scanner.scan(text).findings.map((f) => f.rule);
        expect(rules, `separator ${JSON.stringify(sep)} at ${at}`).toContain("aws-access-key-id");
      }
    }
  });

  it("long joined output is scanned in overlapping pieces: a token anywhere in it is found", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    const token = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
    const alphabet = "abcdefghijklmnopqrstuvwxyz";
    let seed = 5;
    let filler = "";
    while (filler.length < 150_000) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      filler += alphabet[(seed >>> 16) % alphabet.length];
    }
    const zw = (t: string) => t.replace(/(.{3})/g, "$1\u200b");
    expect(scanner.scan(zw(filler)).findings).toEqual([]);
    for (const at of [0, 47_870, 65_520, 95_740, 113_400, 150_000 - token.length]) {
      // one run of 150 K characters cut by zero-width spaces
      const joined = filler.slice(0, at) + token + filler.slice(at + token.length);
      const one = `start ${zw(joined)} end`;
      const f = scanner.scan(one).findings.filter((x) => x.rule === "github-pat");
      expect(f, `one run, token at ${at}`).toEqual([
        expect.objectContaining({ start: 6, end: one.length - 4, encoding: "decoded:joined" }),
      ]);
      // many runs (words of 20 letters, each cut by a zero-width space), the token in one of them
      const words = (joined.match(/.{1,20}/g) ?? []).map(
        (w) => `${w.slice(0, 9)}\u200b${w.slice(9)}`,
      );
      const k = Math.floor(at / 20);
      words[k] = `${token.slice(0, 9)}\u200b${token.slice(9)}`;
      const many = words.join(" ");
      const from = words.slice(0, k).join(" ").length + (k === 0 ? 0 : 1);
      const g = scanner.scan(many).findings.filter((x) => x.rule === "github-pat");
      expect(g, `many runs, token at ${at}`).toHaveLength(1);
      expect(g[0]?.start).toBeLessThanOrEqual(from);
      expect(g[0]?.end).toBeGreaterThanOrEqual(from + (words[k] as string).length);
      expect((g[0]?.end ?? 0) - (g[0]?.start ?? 0)).toBeLessThan(200);
    }
  });

  it("a long hex or base64 run decodes to overlapping pieces: a token anywhere in it is found", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    const token = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
    const filler = "The quick brown fox jumps over the lazy dog. ".repeat(3400).slice(0, 150_000);
    for (const [encoding, encode] of [
      ["hex", (t: string) => Buffer.from(t).toString("hex")],
      ["base64", (t: string) => Buffer.from(t).toString("base64")],
    ] as const) {
      expect(scanner.scan(encode(filler)).findings).toEqual([]);
      for (const at of [0, 47_870, 65_520, 95_740, 113_400, 150_000 - token.length]) {
        const run = encode(filler.slice(0, at) + token + filler.slice(at + token.length));
        const text = `x ${run} y`;
        const f = scanner.scan(text).findings.filter((x) => x.rule === "github-pat");
        expect(f, `${encoding}, token at ${at}`).toHaveLength(1);
        expect(f[0]?.encoding).toBe(`decoded:${encoding}`);
        const per = encoding === "hex" ? 2 : 4 / 3;
        expect(f[0]?.start).toBeLessThanOrEqual(2 + Math.floor(at * per));
        expect(f[0]?.end).toBeGreaterThanOrEqual(2 + Math.ceil((at + token.length) * per));
      }
    }
  });

  it("a long separated run is scanned in overlapping pieces: a token anywhere in it is found", () => {
    const scanner = createScanner({ detectors: ["token_patterns"] });
    const token = "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV";
    const alphabet = "abcdefghijklmnopqrstuvwxyz";
    let seed = 11;
    let filler = "";
    while (filler.length < 150_000) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      filler += alphabet[(seed >>> 16) % alphabet.length];
    }
    expect(scanner.scan([...filler].join("-")).findings).toEqual([]);
    // across a piece's end, across the next piece's start, deep inside, at both ends of the run
    for (const at of [0, 47_870, 65_520, 95_740, 113_400, 150_000 - token.length]) {
      const joined = filler.slice(0, at) + token + filler.slice(at + token.length);
      const text = `start ${[...joined].join("-")} end`;
      const from = 6 + 2 * at;
      const f = scanner.scan(text).findings.filter((x) => x.rule === "github-pat");
      expect(f, `token at ${at}`).toHaveLength(1);
      expect(f[0]?.start).toBeLessThanOrEqual(from);
      expect(f[0]?.end).toBeGreaterThanOrEqual(from + 2 * token.length - 1);
      expect(f[0]?.encoding).toBe("decoded:separated");
    }
  });
});
