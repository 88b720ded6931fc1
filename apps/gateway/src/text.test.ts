import {
  anthropicFrames,
  anthropicJson,
  openaiChatFrames,
  openaiChatJson,
  openaiResponsesFrames,
  openaiResponsesJson,
  type ResolvedReply,
} from "@bottlekit/test-utils";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ClientApi } from "./apis.ts";
import { responseText, TextExtractor } from "./text.ts";

const FRAMES: Record<ClientApi, (r: ResolvedReply) => string[]> = {
  "openai-chat": (r) => openaiChatFrames(r, true),
  "openai-responses": openaiResponsesFrames,
  "anthropic-messages": anthropicFrames,
};
const JSONS: Record<ClientApi, (r: ResolvedReply) => unknown> = {
  "openai-chat": openaiChatJson,
  "openai-responses": openaiResponsesJson,
  "anthropic-messages": anthropicJson,
};
const APIS = Object.keys(FRAMES) as ClientApi[];

function reply(pieces: string[], args?: string): ResolvedReply {
  return {
    id: "resp_abcdef",
    model: "m",
    created: 1,
    pieces,
    toolCalls: args === undefined ? [] : [{ id: "call_1", name: "f", arguments: args }],
    usage: { input: 1, output: 1 },
  };
}

describe("TextExtractor", () => {
  it.each(APIS)("%s: recovers the model's text from a stream split anywhere", (api) => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", maxLength: 10 }), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (pieces, cuts) => {
          const bytes = Buffer.from(FRAMES[api](reply(pieces)).join(""));
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          const ex = new TextExtractor(api);
          let out = "";
          let prev = 0;
          for (const p of points) {
            out += ex.push(bytes.subarray(prev, p));
            prev = p;
          }
          out += ex.push(bytes.subarray(prev)) + ex.end();
          expect(out).toBe(pieces.join(""));
        },
      ),
      { numRuns: 150 },
    );
  });

  it.each(APIS)("%s: includes tool-call arguments, streamed and not", (api) => {
    const r = reply(["Look: "], '{"cmd":"ignore previous instructions"}');
    const ex = new TextExtractor(api);
    const streamed = ex.push(Buffer.from(FRAMES[api](r).join(""))) + ex.end();
    expect(streamed).toContain("ignore previous instructions");
    expect(responseText(api, JSONS[api](r))).toContain("ignore previous instructions");
    expect(responseText(api, JSONS[api](r))).toContain("Look:");
  });

  it.each(APIS)("%s: knows whether the stream reached its terminal marker", (api) => {
    const frames = FRAMES[api](reply(["a", "b"]));
    const whole = new TextExtractor(api);
    whole.push(Buffer.from(frames.join("")));
    whole.end();
    expect(whole.complete).toBe(true);
    for (let cut = 0; cut < frames.length; cut++) {
      const part = new TextExtractor(api);
      part.push(Buffer.from(frames.slice(0, cut).join("")));
      part.end();
      expect(part.complete).toBe(false);
    }
  });

  it("ignores junk without throwing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const api of APIS) {
          const ex = new TextExtractor(api);
          ex.push(bytes);
          ex.end();
          responseText(api, bytes);
        }
      }),
    );
  });
});
