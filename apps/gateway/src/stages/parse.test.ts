import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { parse } from "./parse.ts";

describe("stage: parse", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("reads the facts: model, stream flag, output cap and its key", async () => {
    const r = await h.run([parse], {
      body: { model: "openai/gpt-4o-mini", stream: true, max_completion_tokens: 77, messages: [] },
    });
    expect(r.passed).toBe(true);
    expect(r.call.facts).toMatchObject({
      model: "openai/gpt-4o-mini",
      stream: true,
      maxTokens: 77,
      capKey: "max_completion_tokens",
    });
    expect(r.call.body).toMatchObject({ model: "openai/gpt-4o-mini" });
  });

  it("a body that is not JSON: 400 in the client API's shape (Anthropic on /v1/messages)", async () => {
    const r = await h.run([parse], { path: "/v1/messages", body: "{not json" });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error", message: "the request body is not valid JSON" },
    });
  });

  it("an output cap no model has (1e16) is the client's mistake: 400 naming the key", async () => {
    const r = await h.run([parse], {
      body: { model: "openai/gpt-4o-mini", max_tokens: 1e16, messages: [] },
    });
    expect(r.status).toBe(400);
    expect(r.headers["x-should-retry"]).toBe("false");
    expect(JSON.parse(r.body).error.message).toContain("max_tokens: must be an integer");
  });

  it("property: any JSON body either passes with a non-empty model or is answered 400, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (value) => {
        const r = await h.run([parse], { body: JSON.stringify(value) });
        if (r.passed) {
          expect(typeof r.call.facts.model).toBe("string");
          expect(r.call.facts.model.length).toBeGreaterThan(0);
        } else expect(r.status).toBe(400);
      }),
      { numRuns: 60 },
    );
  });
});
