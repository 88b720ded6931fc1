/**
 * The proxy door: an agent that talks to its provider natively (https://api.anthropic.com
 * through HTTPS_PROXY, trusting the bottle CA, holding only a placeholder key) is metered,
 * budgeted and given the real key exactly like one that uses the API door.
 */
import { statSync } from "node:fs";
import Anthropic from "@anthropic-ai/sdk";
import type { RegisterResult } from "@bottlekit/egress-proxy";
import { ProxyAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ANTHROPIC_KEY, type Harness, startHarness } from "./helpers.ts";

describe("the proxy door", () => {
  let h: Harness;
  let session: RegisterResult;
  let agent: ProxyAgent;
  beforeAll(async () => {
    h = await startHarness(
      {
        budgets: [{ scope: "bottle", key: "sealed", provider: "anthropic", tokens: 1 }],
      },
      {},
      { proxyDoor: true },
    );
    const proxy = h.gw.proxy;
    if (proxy === undefined) throw new Error("the proxy door did not start");
    session = await proxy.host.register({
      bottle: "bottle-a",
      agent: "claude",
      routes: [],
      llmHosts: ["api.anthropic.com"],
      tcp: true,
    });
    const tcp = session.tcp;
    if (tcp === undefined) throw new Error("no TCP listener");
    agent = new ProxyAgent({
      uri: `http://127.0.0.1:${tcp.port}`,
      token: `Basic ${Buffer.from(`bottlekit:${tcp.token}`).toString("base64")}`,
      requestTls: { ca: (await proxy.host.ca("bottle-a")).certPem },
    });
  });
  afterAll(async () => {
    await agent.close();
    await h.close();
  });

  it("serves the approvals MCP server to its sessions on the reserved host", async () => {
    const { fetch } = await import("undici");
    const res = await fetch("https://policy.bottlekit.internal/mcp", {
      method: "POST",
      dispatcher: agent,
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "proxy-door-test", version: "0" },
        },
      }),
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toContain('"serverInfo"');
  });

  it("serves its control socket under $BOTTLEKIT_HOME/state/ with mode 0600", () => {
    const path = h.gw.proxy?.controlSocketPath ?? "";
    expect(path.startsWith(`${h.home.dir}/state/`)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("a native Anthropic SDK call through the proxy: real key injected, placeholder dropped, metered for the bottle session", async () => {
    h.anthropicUp.enqueue({ text: "via the proxy", usage: { input: 33, output: 7 } });
    const client = new Anthropic({
      apiKey: "sk-ant-api03-PLACEHOLDERplaceholderPLACEHOLDER0123456789-abcAA",
      baseURL: "https://api.anthropic.com",
      maxRetries: 0,
      fetchOptions: { dispatcher: agent } as unknown as Anthropic.RequestOptions["fetchOptions"],
    });
    const msg = await client.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(msg.content[0]).toMatchObject({ type: "text", text: "via the proxy" });
    const seen = h.anthropicUp.requests.at(-1);
    expect(seen?.headers["x-api-key"]).toBe(ANTHROPIC_KEY);
    expect(seen?.rawBody).not.toContain("PLACEHOLDER");
    await expect
      .poll(async () => (await h.store.events({ bottle: "bottle-a" })).length, { timeout: 60_000 })
      .toBe(1);
    const [ev] = await h.store.events({ bottle: "bottle-a" });
    expect(ev).toMatchObject({
      bottle: "bottle-a",
      agent: "claude",
      provider: "anthropic",
      inputTokens: 33,
      outputTokens: 7,
      usageMissing: false,
    });
  });

  it("the bottle's budget applies on the proxy door too", async () => {
    const sealed = await h.gw.proxy?.host.register({
      bottle: "sealed",
      routes: [],
      llmHosts: ["api.anthropic.com"],
      tcp: true,
    });
    const tcp = sealed?.tcp;
    if (tcp === undefined) throw new Error("no TCP listener");
    const a2 = new ProxyAgent({
      uri: `http://127.0.0.1:${tcp.port}`,
      token: `Basic ${Buffer.from(`bottlekit:${tcp.token}`).toString("base64")}`,
      requestTls: { ca: (await h.gw.proxy?.host.ca("sealed"))?.certPem ?? "" },
    });
    try {
      const before = h.anthropicUp.requests.length;
      const client = new Anthropic({
        apiKey: "placeholder",
        baseURL: "https://api.anthropic.com",
        maxRetries: 0,
        fetchOptions: { dispatcher: a2 } as unknown as Anthropic.RequestOptions["fetchOptions"],
      });
      const e = await client.messages
        .create({
          model: "claude-sonnet-4-5",
          max_tokens: 5,
          messages: [{ role: "user", content: "x" }],
        })
        .catch((err: unknown) => err);
      expect(e).toBeInstanceOf(Anthropic.RateLimitError);
      expect((e as Error).message).toContain("budget");
      expect(h.anthropicUp.requests.length).toBe(before);
    } finally {
      await a2.close();
    }
  });
});
