import { deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pseudoToken } from "../bench/corpus.ts";
import { createScanner } from "./scan.ts";

/**
 * Issue 17, classes 3-5: token-shaped credentials (no known secrets: token patterns only) under
 * lossless transforms and in the encodings the scanner must decode. Every token below is made up
 * and shaped like the real thing.
 */
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const pick = (n: number, alphabet = ALNUM, seed = 7): string => pseudoToken(n, alphabet, seed);

export const TOKENS: Record<string, string> = {
  "github-pat": `ghp_${pick(36)}`,
  "github-fine-grained-pat": `github_pat_${pick(22, ALNUM, 3)}_${pick(59, ALNUM, 4)}`,
  "aws-access-key-id": `AKIA${pick(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 5)}`,
  "slack-bot-token": `xoxb-123456789012-123456789012-${pick(24, ALNUM, 6)}`,
  "stripe-key": `sk_live_${pick(24, ALNUM, 8)}`,
  "openai-api-key": `sk-proj-${pick(20, ALNUM, 9)}T3BlbkFJ${pick(20, ALNUM, 10)}`,
  "anthropic-api-key": `sk-ant-api03-${pick(93, `${ALNUM}_-`, 11)}`,
};

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64");
function zipEntry(data: Buffer, method: 0 | 8): Buffer {
  const body = method === 8 ? deflateRawSync(data) : data;
  const name = Buffer.from("secret.txt");
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(20, 4);
  header.writeUInt16LE(method, 8);
  header.writeUInt32LE(body.length, 18);
  header.writeUInt32LE(data.length, 22);
  header.writeUInt16LE(name.length, 26);
  return Buffer.concat([header, name, body]);
}
/** A small shell script that exports the token (its encoding spans several wrapped lines). */
const script = (t: string) =>
  `#!/bin/sh\nexport PATH=/usr/local/bin:/usr/bin:/bin\nexport API_TOKEN=${t}\nexec "$@"\n`;
const every = (t: string, n: number, sep: string) =>
  t.match(new RegExp(`.{1,${n}}`, "gs"))?.join(sep) ?? t;

/** Lossless transforms an agent can apply; each keeps the token recoverable. */
export const TRANSFORMS: Record<string, (t: string) => string> = {
  raw: (t) => t,
  "x in front": (t) => `x${t}`,
  "_ in front": (t) => `_${t}`,
  "1 on both sides": (t) => `1${t}1`,
  "base64 of x+token": (t) => b64(`x${t}`),
  "base64 of _+token": (t) => b64(`_${t}`),
  "base64url of 1+token+1": (t) => Buffer.from(`1${t}1`).toString("base64url"),
  reversed: (t) => [...t].reverse().join(""),
  "x then reversed": (t) => [...`${t}x`].reverse().join(""),
  "dash between characters": (t) => [...t].join("-"),
  "space between characters": (t) => [...t].join(" "),
  "no-break space between characters": (t) => [...t].join("\u00a0"),
  "en dash between characters": (t) => [...t].join("\u2013"),
  "zero-width every 3": (t) => every(t, 3, "\u200b"),
  "soft hyphen every 5": (t) => every(t, 5, "\u00ad"),
  "JSON \\n every 4": (t) => JSON.stringify(every(t, 4, "\n")).slice(1, -1),
  "JSON \\t every 6": (t) => JSON.stringify(every(t, 6, "\t")).slice(1, -1),
  "octal escapes": (t) => [...t].map((c) => `\\${c.charCodeAt(0).toString(8)}`).join(""),
  "&#NN without ;": (t) => [...t].map((c) => `&#${c.charCodeAt(0)}`).join(""),
  "&#xNN;": (t) => [...t].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join(""),
  "JSON \\u escapes": (t) =>
    [...t].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
  "zlib+base64": (t) => b64(deflateSync(t)),
  "raw deflate+base64": (t) => b64(deflateRawSync(t)),
  "gzip+base64": (t) => b64(gzipSync(t)),
  "bytes, then gzip+base64": (t) => b64(Buffer.concat([Buffer.from([7, 200, 3]), gzipSync(t)])),
  "text, then gzip+base64": (t) => b64(Buffer.concat([Buffer.from("hello\n"), gzipSync(t)])),
  "gzip, then bytes+base64": (t) => b64(Buffer.concat([gzipSync(t), Buffer.from([9, 9, 9, 1])])),
  "bytes, then gzip+hex": (t) =>
    Buffer.concat([Buffer.from([0xf0, 0x0d]), gzipSync(t)]).toString("hex"),
  "zlib+hex": (t) => deflateSync(t).toString("hex"),
  "raw deflate+hex": (t) => deflateRawSync(t).toString("hex"),
  "binary bytes then base64": (t) =>
    b64(Buffer.concat([Buffer.from([0, 255, 16, 200, 7]), Buffer.from(t)])),
  "non-ASCII then base64": (t) => b64(`ünïcødé ${t}`),
  "UTF-16LE+base64": (t) => b64(Buffer.from(t, "utf16le")),
  "UTF-16LE with BOM+base64": (t) =>
    b64(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, "utf16le")])),
  "UTF-16BE+hex": (t) => Buffer.from(t, "utf16le").swap16().toString("hex"),
  "UTF-16BE+base64": (t) => b64(Buffer.from(t, "utf16le").swap16()),
  "UTF-16BE with BOM+base64": (t) =>
    b64(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(t, "utf16le").swap16()])),
  "a stray byte, then UTF-16LE+base64": (t) =>
    b64(Buffer.concat([Buffer.from("x"), Buffer.from(t, "utf16le")])),
  "a stray byte, then UTF-16BE+base64": (t) =>
    b64(Buffer.concat([Buffer.from("x"), Buffer.from(t, "utf16le").swap16()])),
  "base64 wrapped at 76 (base64, MIME)": (t) => every(b64(script(t)), 76, "\n"),
  "base64 wrapped at 64 with CRLF, indented (PEM, YAML)": (t) =>
    every(b64(script(t)), 64, "\r\n    "),
  "hex wrapped at 60 (xxd -p)": (t) => every(Buffer.from(script(t)).toString("hex"), 60, "\n"),
  "gzip+base64 wrapped at 76": (t) => every(b64(gzipSync(script(t))), 76, "\n"),
  "base64 wrapped at 76 in a JSON string (\\n escapes)": (t) =>
    JSON.stringify(every(b64(script(t)), 76, "\n")).slice(1, -1),
  "base64 wrapped at 64 in a JSON string (\\r\\n escapes)": (t) =>
    JSON.stringify(every(b64(script(t)), 64, "\r\n")).slice(1, -1),
  "zip stored+base64": (t) => b64(zipEntry(Buffer.from(t), 0)),
  "zip deflated+base64": (t) => b64(zipEntry(Buffer.from(`file: ${t}\n`), 8)),
  "escaped slash JSON": (t) => JSON.stringify(`https:\\/\\/x.test\\/?k=${t}`).slice(1, -1),
};

const scanner = createScanner({ detectors: ["token_patterns"] });

describe("token patterns under lossless transforms", () => {
  for (const [rule, token] of Object.entries(TOKENS)) {
    for (const [name, transform] of Object.entries(TRANSFORMS)) {
      it(`${rule}: ${name}`, () => {
        const body = `{"note":"see ${transform(token)} here"}`;
        const r = scanner.scan(body);
        expect(r.blocked, body.slice(0, 200)).toBe(true);
        expect(
          r.findings.some((f) => f.detector === "token_patterns"),
          JSON.stringify(r.findings),
        ).toBe(true);
      });
    }
  }

  it("a lower-cased AWS access key id in a body is a key", () => {
    const r = scanner.scan(`aws key ${TOKENS["aws-access-key-id"]?.toLowerCase()} in text`);
    expect(r.findings.map((f) => f.rule)).toContain("aws-access-key-id-lowercase");
  });

  it("a gzip body that arrived without Content-Encoding (bytes as latin1) is opened", () => {
    const body = gzipSync(`{"token":"${TOKENS["github-pat"]}"}`).toString("latin1");
    expect(scanner.scan(body).blocked).toBe(true);
  });

  it("UTF-16 bodies with and without BOM are read", () => {
    const t = `{"token":"${TOKENS["stripe-key"]}"}`;
    for (const bytes of [
      Buffer.from(t, "utf16le"),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, "utf16le")]),
      Buffer.from(t, "utf16le").swap16(),
    ]) {
      expect(scanner.scan(bytes.toString("latin1")).blocked).toBe(true);
    }
  });
});

describe("random bodies with planted tokens and random transforms (property)", () => {
  const names = Object.keys(TRANSFORMS);
  const rules = Object.keys(TOKENS);
  const words = fc.constantFrom(
    "the",
    "request",
    "model",
    "token",
    "key",
    "=",
    ":",
    "{",
    "}",
    '"',
    "\n",
    "value",
    "secret",
    "api",
    "data",
    "aGVsbG8=",
    "%20",
    "\\u0041",
    "0x1f",
  );
  const body = fc.array(words, { maxLength: 200 }).map((w) => w.join(" "));
  it("every planted token is found, whatever the body, transform and position", () => {
    fc.assert(
      fc.property(
        body,
        body,
        fc.constantFrom(...rules),
        fc.constantFrom(...names),
        fc.constantFrom(" ", "\n", '"', "=", ": ", "\t"),
        (before, after, rule, name, sep) => {
          const planted = (TRANSFORMS[name] as (t: string) => string)(TOKENS[rule] as string);
          const text = `${before}${sep}${planted}${sep}${after}`;
          const r = scanner.scan(text);
          expect(r.blocked, `${rule} ${name}`).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("random bodies without a planted token stay clean (no budget finding, no token)", () => {
    fc.assert(
      fc.property(body, (text) => {
        expect(scanner.scan(text).findings).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});
