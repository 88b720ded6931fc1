import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { agentCredentialHeader, identify, providerOfHost } from "./identify.ts";

const chat = { model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("stage: identify", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("API door on loopback without gateway keys: the default bottle and agent", async () => {
    const r = await h.run([identify], { body: chat });
    expect(r.passed).toBe(true);
    expect(r.call.identity).toMatchObject({ bottle: "default", agent: "default" });
    expect(r.call.proxiedProvider).toBeUndefined();
  });

  it("API door with gateway keys: an unknown key is refused 401 in the client's shape", async () => {
    await h.store.createGatewayKey({ bottle: "b1", agent: "a1" });
    try {
      const r = await h.run([identify], {
        body: chat,
        headers: { authorization: "Bearer bk_not-a-real-key" },
      });
      expect(r.passed).toBe(false);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ error: { type: "authentication_error" } });
    } finally {
      for (const k of await h.store.listGatewayKeys()) await h.store.revokeGatewayKey(k.id);
    }
  });

  it("API door with a valid gateway key: its bottle and agent", async () => {
    const key = await h.store.createGatewayKey({ bottle: "keyed", agent: "coder" });
    try {
      const r = await h.run([identify], {
        body: chat,
        headers: { authorization: `Bearer ${key.key}` },
      });
      expect(r.passed).toBe(true);
      expect(r.call.identity).toMatchObject({ bottle: "keyed", agent: "coder" });
      expect(r.call.credentialHeader).toBe("authorization");
    } finally {
      await h.store.revokeGatewayKey(key.id);
    }
  });

  it("proxy door: identity is the bottle session; the provider is the one whose host was addressed", async () => {
    const r = await h.run([identify], {
      path: "/v1/messages",
      body: { model: "claude-sonnet-4-5", max_tokens: 5, messages: [] },
      headers: { "x-api-key": "placeholder" },
      proxied: {
        sessionId: "s1",
        bottle: "boxed",
        agent: "claude",
        host: "api.anthropic.com",
        port: 443,
      },
    });
    expect(r.passed).toBe(true);
    expect(r.call.identity).toMatchObject({ bottle: "boxed", agent: "claude", parents: [] });
    expect(r.call.proxiedProvider).toBe("anthropic");
    // the agent's placeholder header is named (so DLP skips it) and never becomes a credential
    expect(r.call.credentialHeader).toBe("x-api-key");
    expect(r.call.foreignCredential).toBeUndefined();
  });

  it("proxy door: a host that is no provider's API host is refused 403, naming it", async () => {
    const r = await h.run([identify], {
      body: chat,
      proxied: { sessionId: "s1", bottle: "boxed", host: "example.com", port: 443 },
    });
    expect(r.passed).toBe(false);
    expect(r.status).toBe(403);
    expect(r.body).toContain("example.com is not the API host of a known provider");
  });

  it("providerOfHost reads the registry's API hosts, case-insensitively", () => {
    expect(providerOfHost("api.openai.com")).toBe("openai");
    expect(providerOfHost("API.Anthropic.COM")).toBe("anthropic");
    expect(providerOfHost("example.com")).toBeUndefined();
  });

  it("agentCredentialHeader prefers x-api-key, then authorization", () => {
    const req = (headers: Record<string, string>) =>
      ({ headers }) as unknown as Parameters<typeof agentCredentialHeader>[0];
    expect(agentCredentialHeader(req({ "x-api-key": "k", authorization: "Bearer k" }))).toBe(
      "x-api-key",
    );
    expect(agentCredentialHeader(req({ authorization: "Bearer k" }))).toBe("authorization");
    expect(agentCredentialHeader(req({}))).toBeUndefined();
  });
});
