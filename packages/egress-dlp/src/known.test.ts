import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScanner } from "./scan.ts";

/** The transforms of issue 7 item 2. Each takes and returns text. */
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
function b32(s: string): string {
  const bytes = Buffer.from(s, "latin1");
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += "=";
  return out;
}
export const TRANSFORMS: Record<string, (s: string) => string> = {
  raw: (s) => s,
  base64: b64,
  "base64-nopad": (s) => b64(s).replace(/=+$/, ""),
  base64url: (s) => Buffer.from(s, "latin1").toString("base64url"),
  "base64-shift1": (s) => b64(`:${s}`),
  "base64-shift2": (s) => b64(`u:${s}`),
  "base64url-shift1": (s) => Buffer.from(`:${s}`, "latin1").toString("base64url"),
  base32: b32,
  hex: (s) => Buffer.from(s, "latin1").toString("hex"),
  "hex-upper": (s) => Buffer.from(s, "latin1").toString("hex").toUpperCase(),
  percent: (s) =>
    [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`).join(""),
  "percent-lower": (s) =>
    [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
  uri: (s) => encodeURIComponent(s),
  json: (s) => JSON.stringify(s).slice(1, -1),
  "unicode-escape": (s) =>
    [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
  reversed: (s) => [...s].reverse().join(""),
  "dash-separated": (s) => [...s].join("-"),
  "space-separated": (s) => [...s].join(" "),
  substring: (s) =>
    s.slice(
      Math.floor(s.length * 0.2),
      Math.floor(s.length * 0.2) + Math.max(24, Math.ceil(s.length * 0.6)),
    ),
};

export const CORPUS = [
  {
    name: "ANTHROPIC_API_KEY",
    value: "sk-ant-api03-Qw7zR2mXk9LpT4vN8yB3cF6hJ1sD5gK0aE-xU_iO7pWqZ2rT9mLk3VbN",
  },
  { name: "GITHUB_TOKEN", value: "ghp_4U3LSowpDx8XvYE7A8GH56oxU5aWnY2mzIbV" },
  { name: "DB_PASSWORD", value: "c0rrect/Horse+Battery=Staple!42" },
  { name: "CANARY_WORD_SECRET", value: "bk-canary-7f3a9c2e41d84b6f9a0e5c7d" },
  { name: "AWS_SECRET_ACCESS_KEY", value: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY" },
];

const contexts: Record<string, (v: string) => string> = {
  json: (v) =>
    JSON.stringify({ model: "m", messages: [{ role: "user", content: `see ${v} ok` }], n: 1 }),
  header: (v) => `X-Debug: trace=${v}; q=1`,
  query: (v) => `/v1/search?q=hello&data=${encodeURIComponent(v)}&page=2`,
};

describe("known secrets in every encoding", () => {
  const scanner = createScanner({ detectors: ["known_secrets"], knownSecrets: CORPUS });

  it("finds every secret under every transform and every pair of transforms, in JSON, headers and queries", () => {
    const misses: string[] = [];
    let total = 0;
    const names = Object.keys(TRANSFORMS);
    for (const secret of CORPUS) {
      for (const a of names) {
        for (const b of names) {
          const encoded = (TRANSFORMS[b] as (s: string) => string)(
            (TRANSFORMS[a] as (s: string) => string)(secret.value),
          );
          for (const [cname, wrap] of Object.entries(contexts)) {
            total++;
            const r = scanner.scan(wrap(encoded));
            if (!r.findings.some((f) => f.rule === secret.name))
              misses.push(`${secret.name}:${a}>${b}@${cname}`);
          }
        }
      }
    }
    expect(total).toBe(CORPUS.length * names.length * names.length * 3);
    expect(misses.length, misses.join(" ")).toBe(0);
  });

  it("finds secrets inside random JSON documents (property)", () => {
    const names = Object.keys(TRANSFORMS);
    fc.assert(
      fc.property(
        fc.constantFrom(...CORPUS),
        fc.constantFrom(...names),
        fc.constantFrom(...names),
        fc.jsonValue({ maxDepth: 3 }),
        fc.string(),
        (secret, a, b, doc, key) => {
          const encoded = (TRANSFORMS[b] as (s: string) => string)(
            (TRANSFORMS[a] as (s: string) => string)(secret.value),
          );
          const text = JSON.stringify({ before: doc, [key]: encoded, after: doc });
          expect(scanner.scan(text).findings.some((f) => f.rule === secret.name)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reports offsets covering the secret and never the value", () => {
    const text = `{"k":"${CORPUS[1]?.value}"}`;
    const [f] = scanner.scan(text).findings;
    expect(f).toMatchObject({
      detector: "known_secrets",
      rule: "GITHUB_TOKEN",
      start: 6,
      severity: "block",
    });
    expect(JSON.stringify(f)).not.toContain("4U3LSowp");
  });

  it("stays quiet on unrelated random text (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        expect(scanner.scan(text).findings).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("folds case: lowercase base32, mixed-case hex and case-mangled raw values and fragments", () => {
    const flip = (t: string) =>
      [...t].map((c, i) => (i % 3 === 0 ? c.toUpperCase() : c.toLowerCase())).join("");
    const folds: Record<string, (s: string) => string> = {
      "base32-lower": (s) => (TRANSFORMS.base32 as (x: string) => string)(s).toLowerCase(),
      "hex-mixed": (s) => flip(Buffer.from(s, "latin1").toString("hex")),
      "raw-lower": (s) => s.toLowerCase(),
      "raw-upper": (s) => s.toUpperCase(),
      "substring-lower": (s) => (TRANSFORMS.substring as (x: string) => string)(s).toLowerCase(),
      "base64-lower": (s) => (TRANSFORMS.base64 as (x: string) => string)(s).toLowerCase(),
      "base32-lower-of-base64": (s) =>
        (TRANSFORMS.base32 as (x: string) => string)(
          (TRANSFORMS.base64 as (x: string) => string)(s),
        ).toLowerCase(),
      "hex-mixed-of-reversed": (s) =>
        flip(Buffer.from([...s].reverse().join(""), "latin1").toString("hex")),
    };
    const misses: string[] = [];
    for (const secret of CORPUS) {
      for (const [fname, f] of Object.entries(folds)) {
        for (const [cname, wrap] of Object.entries(contexts)) {
          const r = scanner.scan(wrap(f(secret.value)));
          if (!r.findings.some((x) => x.rule === secret.name))
            misses.push(`${secret.name}:${fname}@${cname}`);
        }
      }
    }
    expect(misses, misses.join(" ")).toEqual([]);
    const lower = scanner.scan(`x ${CORPUS[1]?.value.toLowerCase()} y`).findings[0];
    expect(lower?.encoding).toBe("raw+casefolded");
    expect(scanner.scan(`x ${CORPUS[1]?.value} y`).findings[0]?.encoding).toBe("raw");
  });

  it("rejects known secrets too short to tell apart from text", () => {
    expect(() => createScanner({ knownSecrets: [{ name: "X", value: "abc-123" }] })).toThrow(
      /fewer than/,
    );
  });
});
