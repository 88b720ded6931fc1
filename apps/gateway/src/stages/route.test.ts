import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { route } from "./route.ts";

describe("stage: route", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("a provider/model id routes to that provider's upstream with the provider's model id", async () => {
    const r = await h.run([identify, parse, route], {
      body: { model: "openai/gpt-4o-mini", messages: [] },
    });
    expect(r.passed).toBe(true);
    expect(r.call.target).toMatchObject({
      provider: "openai",
      model: "gpt-4o-mini",
      api: "openai-chat",
    });
    expect(r.call.target.origin).toBe(new URL(h.up.url).origin);
    expect(r.call.provider).toBe("openai");
  });

  it("a model no configured provider serves is refused, naming it", async () => {
    const r = await h.run([identify, parse, route], {
      body: { model: "nowhere/model-x", messages: [] },
    });
    expect(r.passed).toBe(false);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body).toContain("nowhere/model-x");
    expect(r.call.provider).toBe("");
  });

  it("proxy door: a bare model id routes to the provider whose API host the agent addressed", async () => {
    const r = await h.run([identify, parse, route], {
      path: "/v1/messages",
      body: { model: "claude-sonnet-4-5", max_tokens: 5, messages: [] },
      proxied: { sessionId: "s", bottle: "b", host: "api.anthropic.com", port: 443 },
    });
    expect(r.passed).toBe(true);
    expect(r.call.target).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-5" });
  });
});
