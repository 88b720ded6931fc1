import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAI_KEY } from "../../test/helpers.ts";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { checkCredential } from "./credential.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { route } from "./route.ts";

const upTo = [identify, parse, route, checkCredential];

describe("stage: credential", () => {
  let h: StageHarness;
  let byok: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
    byok = await startStageHarness((urls) => ({
      model_providers: [
        { model: "openai/*", base_url: `${urls.openai}/v1`, passthrough_auth: true },
      ],
    }));
  });
  afterAll(async () => {
    await h.close();
    await byok.close();
  });

  it("a client that sends a provider credential is refused 401 and counted; the gateway injects keys itself", async () => {
    const r = await h.run(upTo, {
      body: { model: "openai/gpt-4o-mini", messages: [] },
      headers: { authorization: `Bearer ${OPENAI_KEY}` },
    });
    expect(r.passed).toBe(false);
    expect(r.status).toBe(401);
    expect(r.body).not.toContain(OPENAI_KEY);
    expect(r.body).toContain("clients must not send provider credentials");
    expect(h.pipeline.metrics.render()).toMatch(/client_credential/);
  });

  it("no credential for a non-passthrough provider: passes, nothing to forward", async () => {
    const r = await h.run(upTo, { body: { model: "openai/gpt-4o-mini", messages: [] } });
    expect(r.passed).toBe(true);
    expect(r.call.clientCredential).toBeUndefined();
  });

  it("passthrough_auth: the client's own key is what goes upstream", async () => {
    const r = await byok.run(upTo, {
      body: { model: "openai/gpt-4o-mini", messages: [] },
      headers: { authorization: "Bearer client-own-key-123" },
    });
    expect(r.passed).toBe(true);
    expect(r.call.clientCredential).toBe("client-own-key-123");
  });

  it("passthrough_auth without a client credential: 401 naming the setting", async () => {
    const r = await byok.run(upTo, { body: { model: "openai/gpt-4o-mini", messages: [] } });
    expect(r.status).toBe(401);
    expect(r.body).toContain("passthrough_auth");
  });
});
