import { type FakeUsage, openaiChatFrames, type ResolvedReply } from "@bottlekit/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stripFrame, UsageStripper } from "./sse.ts";

function reply(pieces: string[], usage: FakeUsage = { input: 3, output: 4 }): ResolvedReply {
  return { id: "chatcmpl-x", model: "m", created: 1, pieces, toolCalls: [], usage };
}

/** Splits `bytes` at the given cut points (any byte, mid-UTF-8 included). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function run(chunks: Buffer[]): string {
  const s = new UsageStripper();
  let out = "";
  for (const c of chunks) out += s.push(c);
  return out + s.end();
}

describe("UsageStripper", () => {
  it("turns an include_usage stream into exactly the stream without it", () => {
    const r = reply(["Hel", "lo ", "wörld 👋"]);
    const withUsage = openaiChatFrames(r, true).join("");
    const without = openaiChatFrames(r, false).join("");
    expect(run([Buffer.from(withUsage)])).toBe(without);
  });

  it("property: any chunking, any text (including quotes and the word usage) gives the same output", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", maxLength: 12 }), { minLength: 0, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (pieces, cuts) => {
          const r = reply(pieces.map((p) => `${p},"usage":null "choices":[]`));
          const bytes = Buffer.from(openaiChatFrames(r, true).join(""));
          expect(run(split(bytes, cuts))).toBe(openaiChatFrames(r, false).join(""));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("leaves frames it does not understand untouched", () => {
    expect(stripFrame('data: {"choices":[],"usage":{not json\n\n')).toBe(
      'data: {"choices":[],"usage":{not json\n\n',
    );
    expect(stripFrame(": keep-alive\n\n")).toBe(": keep-alive\n\n");
  });

  it("is linear: 4x the stream costs well under 16x the time", () => {
    const frames = (n: number) =>
      Buffer.from(
        openaiChatFrames(reply(Array.from({ length: n }, (_, i) => `w${i} `)), true).join(""),
      );
    const time = (b: Buffer) => {
      const chunks = split(
        b,
        Array.from({ length: 200 }, (_, i) => i * 97),
      );
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) run(chunks);
      return performance.now() - t0;
    };
    time(frames(2000));
    const small = time(frames(5000));
    const big = time(frames(20000));
    expect(big / small).toBeLessThan(16);
  });
});
