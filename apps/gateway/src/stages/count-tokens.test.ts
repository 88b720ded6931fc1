import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";

const upTo = [identify, parse, route, checkCredential, scanOutbound, upstreamBody, countTokens];
const body = {
  model: "anthropic/claude-sonnet-4-5",
  messages: [{ role: "user", content: "how many tokens is this?" }],
};

describe("stage: count_tokens", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("any other call passes through untouched, nothing sent upstream", async () => {
    const before = h.anthropicUp.requests.length;
    const r = await h.run(upTo, { path: "/v1/messages", body: { ...body, max_tokens: 5 } });
    expect(r.passed).toBe(true);
    expect(h.anthropicUp.requests.length).toBe(before);
  });

  it("forwarded to the provider's counter with the injected key, marked provider, unmetered", async () => {
    const r = await h.run(upTo, { path: "/v1/messages/count_tokens", body });
    expect(r.status).toBe(200);
    expect(r.headers["x-bottlekit-token-count"]).toBe("provider");
    expect(typeof JSON.parse(r.body).input_tokens).toBe("number");
    expect(h.anthropicUp.requests.at(-1)?.path).toBe("/v1/messages/count_tokens");
    expect(await h.store.events({})).toHaveLength(0);
  });

  it("a cut-off bottle: the estimate, and nothing leaves", async () => {
    await h.store.cutOff("default", { by: "test", reason: "stage test", policy: "cutoff" });
    try {
      const before = h.anthropicUp.requests.length;
      const r = await h.run(upTo, { path: "/v1/messages/count_tokens", body });
      expect(r.headers["x-bottlekit-token-count"]).toBe("estimate");
      expect(JSON.parse(r.body).input_tokens).toBe(
        Math.ceil(Buffer.byteLength(JSON.stringify({ ...body, model: "claude-sonnet-4-5" })) / 4),
      );
      expect(h.anthropicUp.requests.length).toBe(before);
    } finally {
      await h.store.restore("default", { by: "test", reason: "stage test done" });
    }
  });
});
