/**
 * The budget's cutoff reaches the proxy door: a bottle session whose budget runs out during a
 * streamed call through the proxy has its other connections closed (here an open CONNECT
 * tunnel), and its new requests refused with 403, by the real egress-proxy host in-process.
 * Restoring the bottle in the store re-opens its egress.
 */
import { request as httpRequest } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import type { RegisterResult } from "@bottlekit/egress-proxy";
import { ProxyAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.ts";

/** Opens a CONNECT tunnel through the session's proxy socket; resolves with its status and socket. */
function connectTunnel(
  socketPath: string,
  authority: string,
): Promise<{ status: number; socket: Socket | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: "CONNECT", path: authority });
    req.on("connect", (res, socket) => resolve({ status: res.statusCode ?? 0, socket }));
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, socket: undefined });
    });
    req.on("error", reject);
    req.end();
  });
}

/** Writes `text` through the tunnel and resolves with what the echo server sent back. */
function echo(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const onData = (c: Buffer): void => {
      got += c.toString();
      if (got.length >= text.length) {
        socket.off("data", onData);
        resolve(got);
      }
    };
    socket.on("data", onData);
    socket.write(text);
  });
}

describe("a budget cutoff on the proxy door", () => {
  let h: Harness;
  let echoServer: Server;
  let session: RegisterResult;
  let agent: ProxyAgent;
  beforeAll(async () => {
    echoServer = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echoServer.listen(0, "127.0.0.1", r));
    const echoPort = (echoServer.address() as { port: number }).port;
    h = await startHarness(
      { budgets: [{ scope: "bottle", key: "spender", provider: "anthropic", tokens: 300 }] },
      {},
      {
        proxyDoor: true,
        proxyOptions: {
          resolve: (host, port) =>
            host === "tunnel.test" ? { host: "127.0.0.1", port: echoPort } : { host, port },
        },
      },
    );
    const proxy = h.gw.proxy;
    if (proxy === undefined) throw new Error("the proxy door did not start");
    session = await proxy.host.register({
      bottle: "spender",
      agent: "claude",
      routes: [{ host: "tunnel.test", port: 7000 }],
      llmHosts: ["api.anthropic.com"],
      tcp: true,
    });
    const tcp = session.tcp;
    if (tcp === undefined) throw new Error("no TCP listener");
    agent = new ProxyAgent({
      uri: `http://127.0.0.1:${tcp.port}`,
      token: `Basic ${Buffer.from(`bottlekit:${tcp.token}`).toString("base64")}`,
      requestTls: { ca: (await proxy.host.ca("spender")).certPem },
    });
  });
  afterAll(async () => {
    await agent.close();
    await h.close();
    await new Promise<void>((r) => echoServer.close(() => r()));
  });

  it("the stream that spends the budget completes; the session's open tunnel is closed and new requests get 403; a restore re-opens", async () => {
    // An open tunnel of the same session, working before the crossing.
    const tunnel = await connectTunnel(session.proxySocketPath, "tunnel.test:7000");
    expect(tunnel.status).toBe(200);
    const socket = tunnel.socket as Socket;
    expect(await echo(socket, "ping")).toBe("ping");
    const tunnelClosed = new Promise<void>((r) => socket.once("close", () => r()));

    // A streamed call through the proxy whose usage (250 + 100) crosses the 300-token budget.
    h.anthropicUp.enqueue({
      pieces: ["the ", "last ", "answer"],
      usage: { input: 250, output: 100 },
    });
    const client = new Anthropic({
      apiKey: "placeholder",
      baseURL: "https://api.anthropic.com",
      maxRetries: 0,
      fetchOptions: { dispatcher: agent } as unknown as Anthropic.RequestOptions["fetchOptions"],
    });
    const stream = client.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 5,
      messages: [{ role: "user", content: "spend it" }],
    });
    // the whole answer reaches the agent: the cutoff waits for the crossing call's response
    expect(await stream.finalText()).toBe("the last answer");

    await tunnelClosed;
    expect(await h.store.isCutOff("spender")).toBe(true);
    const [listed] = await (h.gw.proxy?.host.list() ?? Promise.resolve([]));
    expect(listed?.cutoff).toBe(true);
    expect(h.logs.some((l) => l.event === "proxy.cutoff" && l["bottle"] === "spender")).toBe(true);

    // New requests of the bottle, tunnel or LLM call, are refused by the proxy.
    const again = await connectTunnel(session.proxySocketPath, "tunnel.test:7000");
    expect(again.status).toBe(403);
    const upstreamCalls = h.anthropicUp.requests.length;
    const refused = await client.messages
      .create({
        model: "claude-sonnet-4-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    expect(h.anthropicUp.requests.length).toBe(upstreamCalls);

    // The store is the truth: once an operator restores the bottle, its egress re-opens.
    await h.store.restore("spender", { by: "test", reason: "budget raised" });
    await expect
      .poll(async () => (await connectTunnel(session.proxySocketPath, "tunnel.test:7000")).status, {
        timeout: 60_000,
        interval: 250,
      })
      .toBe(200);
  });
});
