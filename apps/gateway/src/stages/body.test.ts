import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";

const upTo = [identify, parse, route, checkCredential, scanOutbound, upstreamBody];

describe("stage: upstream body", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("the upstream's model id differs: re-serialized with it, nothing else changed", async () => {
    const r = await h.run(upTo, {
      body: { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "x" }] },
    });
    expect(r.passed).toBe(true);
    expect(JSON.parse(String(r.call.out))).toEqual({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
    });
    expect(r.call.outBytes).toBe(Buffer.byteLength(String(r.call.out)));
    expect(r.call.injectUsage).toBe(false);
  });

  it("an OpenAI chat stream without include_usage: the gateway asks for usage (and strips it later)", async () => {
    const r = await h.run(upTo, {
      body: { model: "openai/gpt-4o-mini", stream: true, messages: [] },
    });
    expect(r.call.injectUsage).toBe(true);
    expect(JSON.parse(String(r.call.out)).stream_options).toEqual({ include_usage: true });
  });

  it("a client that asked for usage itself keeps its own stream_options", async () => {
    const r = await h.run(upTo, {
      body: {
        model: "openai/gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [],
      },
    });
    expect(r.call.injectUsage).toBe(false);
  });

  it("a Messages client on a Chat-Completions model: the body in the provider's API, with the translation context", async () => {
    const r = await h.run(upTo, {
      path: "/v1/messages",
      body: {
        model: "openai/gpt-4o-mini",
        max_tokens: 20,
        system: "be brief",
        messages: [{ role: "user", content: "hi" }],
      },
    });
    expect(r.passed).toBe(true);
    expect(r.call.target.translated).toBe(true);
    const out = JSON.parse(String(r.call.out));
    expect(out.model).toBe("gpt-4o-mini");
    expect(out.messages[0]).toMatchObject({ role: "system" });
    expect(r.call.translation).toBeDefined();
  });

  it("count_tokens on a translated route: the gateway's estimate, marked as such", async () => {
    const body = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "count me" }] };
    const r = await h.run(upTo, { path: "/v1/messages/count_tokens", body });
    expect(r.status).toBe(200);
    expect(r.headers["x-bottlekit-token-count"]).toBe("estimate");
    expect(JSON.parse(r.body)).toEqual({
      input_tokens: Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4),
    });
  });

  it("an endpoint translation does not cover (embeddings of a Messages-only model) is refused 400", async () => {
    const r = await h.run(upTo, {
      path: "/v1/embeddings",
      body: { model: "anthropic/claude-sonnet-4-5", input: "x" },
    });
    expect(r.status).toBe(400);
    expect(r.body).toContain("is not translated");
  });
});
