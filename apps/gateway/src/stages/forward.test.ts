import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAI_KEY } from "../../test/helpers.ts";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { forward, upstreamHeaders } from "./forward.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { reserve } from "./reserve.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";

const upTo = [
  identify,
  parse,
  route,
  checkCredential,
  scanOutbound,
  upstreamBody,
  countTokens,
  reserve,
  forward,
];
const chat = {
  model: "openai/gpt-4o-mini",
  max_tokens: 20,
  messages: [{ role: "user", content: "hi" }],
};

describe("stage: forward", () => {
  let h: StageHarness;
  let dead: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
    // an upstream origin where nothing listens
    dead = await startStageHarness({
      model_providers: [
        { model: "openai/*", base_url: "http://127.0.0.1:9/v1", access_key: "$OPENAI_API_KEY" },
      ],
    });
  });
  afterAll(async () => {
    await h.close();
    await dead.close();
  });

  it("sends the prepared body with the provider's key injected and the client's credential and cookies dropped", async () => {
    h.up.enqueue({ text: "ok", usage: { input: 3, output: 1 } });
    const r = await h.run(upTo, {
      body: chat,
      headers: { cookie: "session=abc", "user-agent": "stage-test/1", "x-custom": "no" },
    });
    expect(r.passed).toBe(true);
    expect(r.call.upstream.statusCode).toBe(200);
    expect(JSON.parse((await r.call.upstream.body.bytes()).toString("utf8"))).toBeTypeOf("object");
    const seen = h.up.requests.at(-1);
    expect(seen?.headers["authorization"]).toBe(`Bearer ${OPENAI_KEY}`);
    expect(seen?.headers["cookie"]).toBeUndefined();
    expect(seen?.headers["x-custom"]).toBeUndefined();
    expect(seen?.headers["user-agent"]).toBe("stage-test/1");
    expect(seen?.headers["x-request-id"]).toBe(r.call.requestId);
    expect(seen?.rawBody).toBe(String(r.call.out));
    await h.store.release(r.call.reservationId);
  });

  it("an upstream that cannot be reached: 502 naming the provider, the reservation released", async () => {
    const r = await dead.run(upTo, { body: chat });
    expect(r.passed).toBe(false);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).error.message).toContain("could not connect to the upstream");
    expect(await dead.store.release(r.call.reservationId)).toBe(false);
    expect(dead.pipeline.metrics.render()).toMatch(/connect/);
  });

  it("upstreamHeaders: allowed client headers, then the provider's; a passthrough credential in the provider's header", () => {
    const req = {
      headers: { accept: "text/event-stream", "anthropic-version": "2023-06-01", cookie: "x" },
    } as unknown as Parameters<typeof upstreamHeaders>[0];
    const target = {
      headers: { "x-api-key": "injected" },
      authHeader: "x-api-key",
    } as unknown as Parameters<typeof upstreamHeaders>[1];
    expect(upstreamHeaders(req, target, 12, "rid", undefined)).toEqual({
      "content-type": "application/json",
      "content-length": "12",
      "x-request-id": "rid",
      accept: "text/event-stream",
      "anthropic-version": "2023-06-01",
      "x-api-key": "injected",
    });
    const bearer = { headers: {}, authHeader: "authorization" } as unknown as Parameters<
      typeof upstreamHeaders
    >[1];
    expect(upstreamHeaders(req, bearer, 1, "r", "own")["authorization"]).toBe("Bearer own");
  });
});
