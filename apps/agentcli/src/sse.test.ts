import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseDecoder } from "./sse.ts";

const decodeAll = (chunks: string[]) => {
  const d = new SseDecoder();
  return [...chunks.flatMap((c) => d.push(c)), ...d.end()];
};

describe("SseDecoder", () => {
  it("decodes data, event names, multi-line data and comments", () => {
    expect(decodeAll([": comment\nevent: error\ndata: a\ndata: b\n\ndata:c\r\n\r\n"])).toEqual([
      { event: "error", data: "a\nb" },
      { event: undefined, data: "c" },
    ]);
  });

  it("property: any split of the stream, any line ending, gives the same events", () => {
    const payload = fc.string({ maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(
        fc.array(payload, { minLength: 1, maxLength: 8 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        fc.array(fc.nat(200), { maxLength: 10 }),
        (datas, eol, cuts) => {
          const text = datas.map((d) => `data: ${d}${eol}${eol}`).join("");
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const chunks: string[] = [];
          let last = 0;
          for (const p of points) {
            chunks.push(text.slice(last, p));
            last = p;
          }
          chunks.push(text.slice(last));
          expect(decodeAll(chunks)).toEqual(datas.map((d) => ({ event: undefined, data: d })));
        },
      ),
    );
  });

  it("property: random input never throws", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 50 }), { maxLength: 10 }), (chunks) => {
        expect(Array.isArray(decodeAll(chunks))).toBe(true);
      }),
    );
  });
});
