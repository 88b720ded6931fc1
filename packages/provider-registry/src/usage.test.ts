import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { createUsageTap, parseUsage, type UsageResult, type WireApi } from "./index.ts";

const FIXTURES = join(import.meta.dirname, "../test/fixtures/usage");
const expected = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as Record<
  string,
  UsageResult
>;
const cases = Object.entries(expected).map(([file, usage]) => ({
  file,
  api: file.split("/")[0] as WireApi,
  bytes: readFileSync(join(FIXTURES, file)),
  usage,
}));

function tapAll(api: WireApi, chunks: Iterable<Uint8Array | string>): UsageResult {
  const tap = createUsageTap(api);
  for (const c of chunks) tap.write(c);
  return tap.end();
}

/** Split `bytes` at the given offsets (any byte, mid-UTF-8 and mid-CRLF included). */
function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe("usage fixtures", () => {
  it("covers every wire API with text, tool calls, reasoning, cache and an interrupted stream", () => {
    const files = readdirSync(FIXTURES, { recursive: true, encoding: "utf8" }).filter((f) =>
      /\.(sse|json)$/.test(f),
    );
    expect(files.filter((f) => f !== "expected.json").sort()).toEqual(Object.keys(expected).sort());
    for (const api of ["openai-chat", "openai-responses", "anthropic-messages", "gemini"]) {
      const names = cases.filter((c) => c.api === api).map((c) => c.file);
      expect(
        names.some((n) => n.includes("interrupted")),
        api,
      ).toBe(true);
      expect(
        names.some((n) => n.includes("tool-calls")),
        api,
      ).toBe(true);
      expect(
        names.some((n) => /reasoning|thinking/.test(n)),
        api,
      ).toBe(true);
      expect(
        names.some((n) => n.includes("cache")),
        api,
      ).toBe(true);
    }
  });

  it.each(cases)("$file: the tap reads the usage in one chunk", ({ api, bytes, usage }) => {
    expect(tapAll(api, [bytes])).toEqual(usage);
  });

  it.each(cases)("$file: byte by byte gives the same usage", ({ api, bytes, usage }) => {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
    expect(tapAll(api, chunks)).toEqual(usage);
  });

  it.each(cases)("$file: parseUsage on the whole body", ({ api, bytes, usage }) => {
    expect(parseUsage(api, bytes.toString("utf8"))).toEqual(usage);
    if (bytes[0] === 0x7b || bytes[0] === 0x5b) {
      expect(parseUsage(api, JSON.parse(bytes.toString("utf8")))).toEqual(usage);
    }
  });

  it("property: splitting any fixture at random points gives the same usage", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...cases),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.boolean(),
        (c, cuts, asStrings) => {
          const parts = splitAt(c.bytes, cuts);
          // As strings, a cut inside a multi-byte character would change the text itself, so
          // string chunks are only cut on character boundaries; byte chunks are cut anywhere.
          const chunks = asStrings ? splitString(c.bytes.toString("utf8"), cuts) : parts;
          expect(tapAll(c.api, chunks)).toEqual(c.usage);
        },
      ),
      { numRuns: 600 },
    );
  });
});

function splitString(text: string, cuts: number[]): string[] {
  const chars = Array.from(text);
  const points = [...new Set(cuts.map((c) => c % (chars.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(chars.slice(prev, p).join(""));
    prev = p;
  }
  out.push(chars.slice(prev).join(""));
  return out;
}

describe("usage semantics", () => {
  it("reports usageMissing for an OpenAI stream sent without include_usage", () => {
    const body =
      'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
    expect(tapAll("openai-chat", [body])).toMatchObject({ usageMissing: true, inputTokens: 0 });
  });

  it('ignores usage:null and an escaped "usage" inside content', () => {
    const body =
      'data: {"choices":[{"delta":{"content":"the \\"usage\\": {1}"}}],"usage":null}\n\n' +
      'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n';
    expect(tapAll("openai-chat", [body])).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      usageMissing: false,
    });
  });

  it("joins multi-line data fields and skips comments, ids and retry lines", () => {
    const body =
      ': keep-alive\n\nid: 7\nretry: 1000\nevent: message_delta\ndata: {"type":"message_delta",\ndata: "usage":{"output_tokens":9}}\n\n';
    const tap = createUsageTap("anthropic-messages");
    tap.write(
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
    );
    expect(tap.peek()).toMatchObject({ inputTokens: 5, outputTokens: 1, usageMissing: true });
    tap.write(body);
    expect(tap.end()).toMatchObject({ inputTokens: 5, outputTokens: 9, usageMissing: false });
  });

  it("takes the last of several usage reports (vLLM continuous usage stats)", () => {
    const body = [1, 2, 3]
      .map((n) => `data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":${n}}}\n\n`)
      .join("");
    expect(tapAll("openai-chat", [body]).outputTokens).toBe(3);
  });

  it("treats a truncated JSON body as missing usage", () => {
    expect(tapAll("openai-chat", ['{"usage":{"prompt_tokens":3,"completion'])).toMatchObject({
      usageMissing: true,
    });
  });

  it("does not buffer a plain JSON body past maxJsonBytes", () => {
    const tap = createUsageTap("openai-chat", { maxJsonBytes: 10 });
    tap.write('{"usage":{"prompt_tokens":3,"completion_tokens":4}}');
    expect(tap.end().usageMissing).toBe(true);
  });

  it("refuses writes after end and unknown APIs", () => {
    const tap = createUsageTap("gemini");
    tap.end();
    expect(() => tap.write("data: {}\n\n")).toThrowError(
      expect.objectContaining({ code: "E_USAGE" }),
    );
    expect(() => createUsageTap("bogus" as WireApi)).toThrowError(
      expect.objectContaining({ code: "E_INVALID_INPUT" }),
    );
  });

  it("parseUsage reports missing usage for a body without one, and never negative counts", () => {
    expect(parseUsage("openai-chat", { choices: [] }).usageMissing).toBe(true);
    expect(
      parseUsage("openai-chat", { usage: { prompt_tokens: -5, completion_tokens: "7" } }),
    ).toMatchObject({ inputTokens: 0, outputTokens: 0, usageMissing: false });
  });

  it("property: random bytes never throw and never hang", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<WireApi>("openai-chat", "openai-responses", "anthropic-messages", "gemini"),
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        (api, chunks) => {
          const r = tapAll(api, chunks);
          expect(r.inputTokens).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("stays linear: a 4x larger stream does 4x the work (bytes copied, decoded and parsed)", () => {
    const line = `data: ${JSON.stringify({ choices: [{ delta: { content: "xxxxxxxxxxxxxxxxxxxx" } }], usage: null })}\n\n`;
    const make = (n: number) => Buffer.from(line.repeat(n));
    // Counted work, not time: every byte the tap copies or turns into a string. A tap that re-read
    // what it already saw (a growing carry, a rescanned buffer) would grow faster than its input.
    const work = (buf: Buffer, chunk: number) => {
      let bytes = 0;
      const spies = [
        vi.spyOn(Buffer, "concat"),
        vi.spyOn(Buffer, "from"),
        vi.spyOn(Buffer.prototype, "toString"),
        vi.spyOn(JSON, "parse"),
      ];
      try {
        const tap = createUsageTap("openai-chat");
        for (let i = 0; i < buf.length; i += chunk) tap.write(buf.subarray(i, i + chunk));
        tap.end();
        for (const spy of spies)
          for (const r of spy.mock.results)
            if (r.type === "return") bytes += (r.value as { length?: number })?.length ?? 0;
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
      return bytes;
    };
    for (const chunk of [7, 1000, 65_536]) {
      const small = work(make(500), chunk);
      const big = work(make(2_000), chunk);
      expect(small).toBeGreaterThan(0);
      expect(big / small).toBeLessThan(4.5);
      expect(big / small).toBeGreaterThan(3.5);
    }
  });
});
