import { type FakeUsage, openaiChatFrames, type ResolvedReply } from "@bottlekit/test-utils";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
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

  it("is linear: 4x the stream is 4x the characters scanned and copied", () => {
    const frames = (n: number) =>
      Buffer.from(
        openaiChatFrames(reply(Array.from({ length: n }, (_, i) => `w${i} `)), true).join(""),
      );
    // Counted work, not time: characters searched by indexOf and copied by slice while the
    // stripper runs. Rescanning a pending tail on every chunk would grow faster than the input.
    const work = (b: Buffer) => {
      const chunks = split(
        b,
        Array.from({ length: Math.ceil(b.length / 97) }, (_, i) => i * 97),
      );
      let chars = 0;
      const { indexOf, slice } = String.prototype;
      const indexSpy = vi.spyOn(String.prototype, "indexOf").mockImplementation(function (
        this: string,
        search: string,
        from?: number,
      ) {
        const at = indexOf.call(this, search, from);
        chars += (at === -1 ? this.length : at + search.length) - (from ?? 0);
        return at;
      });
      const sliceSpy = vi.spyOn(String.prototype, "slice").mockImplementation(function (
        this: string,
        a?: number,
        z?: number,
      ) {
        const out = slice.call(this, a, z);
        chars += out.length;
        return out;
      });
      try {
        run(chunks);
      } finally {
        indexSpy.mockRestore();
        sliceSpy.mockRestore();
      }
      return chars;
    };
    const small = work(frames(5000));
    const big = work(frames(20000));
    expect(small).toBeGreaterThan(0);
    expect(big / small).toBeLessThan(4.5);
  });
});
