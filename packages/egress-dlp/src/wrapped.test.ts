import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { englishText } from "../bench/corpus.ts";
import { createScanner } from "./scan.ts";

/**
 * Base64 and hex wrapped on lines (what `base64`, `openssl base64`, PEM, MIME and `xxd -p` print):
 * a token whose encoding crosses a line break is found, whatever the width, line ending,
 * indentation, or text around the block, including a word on the line after it.
 */
const scanner = createScanner({ detectors: ["token_patterns"] });
/** Made-up tokens shaped like real ones (deterministic, random-looking). */
const TOKENS: Record<string, string> = {
  "github-pat": "ghp_Q7zR2mK9pL4xW8vN3bT6yH1cJ5fD0gS2aE7u",
  "aws-access-key-id": "AKIAZ3QX7MLP2RTW5VKD",
  "stripe-key": "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ",
  "slack-bot-token": "xoxb-384920175564-918273645012-Zr8Lq2Wm5Xn7Vb3Kc9Hd1Fj4",
  "anthropic-api-key": `sk-ant-api03-${"Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed".repeat(3).slice(0, 93)}AA`,
};
const found = (text: string) =>
  scanner.scan(text).findings.some((f) => f.detector === "token_patterns");
const wrap = (t: string, width: number, eol: string) =>
  t.match(new RegExp(`.{1,${width}}`, "gs"))?.join(eol) ?? t;

describe("wrapped base64 and hex", () => {
  it("a token anywhere in a wrapped file is found (property: token, offset, width, line end, indentation, encoding, text after)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(TOKENS)),
        fc.nat(300),
        fc.constantFrom(48, 60, 64, 76, 100),
        fc.constantFrom("\n", "\r\n", "\n    ", "\\n", "\\r\\n"),
        fc.constantFrom("base64", "hex", "gzip+base64", "utf16be+base64"),
        fc.constantFrom("", "\n", "\nthe", "\nEOF\n", "\nthem", " done", '"}'),
        (token, offset, width, eol, encoding, after) => {
          const file = `${englishText(offset + 1, offset)}\nexport TOKEN=${token}\n${englishText(120, 3)}`;
          const bytes =
            encoding === "gzip+base64"
              ? gzipSync(file)
              : encoding === "utf16be+base64"
                ? Buffer.from(file, "utf16le").swap16()
                : Buffer.from(file);
          const encoded = encoding === "hex" ? bytes.toString("hex") : bytes.toString("base64");
          const body = `{"content": "${wrap(encoded, width, eol)}${after}`;
          expect(
            found(body),
            `${encoding} ${width} ${JSON.stringify(eol)} ${JSON.stringify(after)}`,
          ).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("lines narrower than 48 characters, or not a multiple of 4, are not joined (prose and code are not made into tokens)", () => {
    // a token cut in two by a line break in plain text stays two words
    const token = TOKENS["github-pat"] as string;
    expect(found(`${token.slice(0, 20)}\n${token.slice(20)}\n`)).toBe(false);
    // 40-character base64 lines: left as they are
    const narrow = wrap(Buffer.from(`prefix text ${token}`).toString("base64"), 40, "\n");
    expect(found(narrow)).toBe(false);
  });

  it("random base64 wrapped at 64 (a PEM body) and wrapped English are clean", () => {
    const random = Buffer.alloc(48 * 1000);
    for (let k = 0; k < random.length; k++) random[k] = (k * 2654435761) >>> 24;
    expect(scanner.scan(wrap(random.toString("base64"), 64, "\n")).findings).toEqual([]);
    const english = Buffer.from(englishText(60_000)).toString("base64");
    expect(scanner.scan(wrap(english, 76, "\n")).findings).toEqual([]);
  });

  it("stays linear: four times as many wrapped lines, about four times the work", () => {
    const english = (n: number) =>
      wrap(Buffer.from(englishText(n, 5)).toString("base64"), 76, "\n");
    const small = scanner.measure(english(64 * 1024));
    const big = scanner.measure(english(256 * 1024));
    expect(small.blocked).toBe(false);
    expect(big.blocked).toBe(false);
    expect(big.work / small.work).toBeLessThan(5);
  });
});

/** `bytes` as the tools print them: xxd, hexdump -C, hexdump (16-bit little-endian words), od. */
function dump(
  bytes: Buffer,
  format: "xxd" | "hexdump -C" | "hexdump" | "od -A x -t x1z",
  from = 0,
): string {
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0"));
    const text = [...row].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    const off = (from + at).toString(16);
    if (format === "xxd") {
      const groups: string[] = [];
      for (let g = 0; g < hex.length; g += 2) groups.push(hex.slice(g, g + 2).join(""));
      lines.push(`${off.padStart(8, "0")}: ${groups.join(" ").padEnd(39)}  ${text}`);
    } else if (format === "hexdump -C") {
      const left = hex.slice(0, 8).join(" ");
      const right = hex.slice(8).join(" ");
      lines.push(`${off.padStart(8, "0")}  ${`${left}  ${right}`.padEnd(49)}  |${text}|`);
    } else if (format === "hexdump") {
      const words: string[] = [];
      for (let g = 0; g < row.length; g += 2) {
        words.push((((row[g + 1] ?? 0) << 8) | (row[g] as number)).toString(16).padStart(4, "0"));
      }
      lines.push(`${off.padStart(7, "0")} ${words.join(" ")}`);
    } else {
      lines.push(`${off.padStart(6, "0")} ${hex.join(" ").padEnd(47)}  >${text}<`);
    }
  }
  return `${lines.join("\n")}\n`;
}

describe("hex dumps", () => {
  it("a token in a file dumped by xxd, hexdump or od is found, gzip'd first or not (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(TOKENS)),
        fc.nat(200),
        fc.constantFrom("xxd", "hexdump -C", "hexdump", "od -A x -t x1z"),
        fc.boolean(),
        fc.constantFrom(0, 0x40, 0x1000),
        (token, offset, format, gzip, from) => {
          const file = `${englishText(offset + 1, offset)}\nTOKEN=${token}\n${englishText(100, 2)}`;
          const bytes = gzip ? gzipSync(file) : Buffer.from(file);
          const text = `$ ${format} notes.txt\n${dump(bytes, format, from)}$ `;
          expect(found(text), `${format} gzip=${gzip} from=${from}`).toBe(true);
        },
      ),
      { numRuns: 120 },
    );
  });

  it("tables of numbers and runs of zeros are not dumps (no finding, linear work)", () => {
    const table = Array.from(
      { length: 200 },
      (_, i) => `${String(i * 16).padStart(7, "0")} 12 34 56 78 rows`,
    ).join("\n");
    expect(scanner.scan(table).findings).toEqual([]);
    const zeros = (n: number) => "0".repeat(n);
    const small = scanner.measure(zeros(256 * 1024));
    const big = scanner.measure(zeros(1024 * 1024));
    expect(big.blocked).toBe(false);
    expect(big.work / small.work).toBeLessThan(5);
  });
});
