/**
 * `lazyStart`: the gateway answers as soon as it listens, and `ready()` adds what only its traffic
 * needs. Until then the approvals host is refused like any undeclared host (fail closed).
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ProxyAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./compose.ts";

const HOST = "policy.bottlekit.internal";

describe("startGateway({ lazyStart })", () => {
  let home: string;
  let gw: RunningGateway;
  let agent: ProxyAgent;
  let tcpPort = 0;
  let proxyAuth = "";
  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "bottlekit-gw-lazy-"));
    gw = await startGateway({
      listen: "127.0.0.1:0",
      proxyDoor: true,
      proxyControlSocket: false,
      lazyStart: true,
      env: { BOTTLEKIT_HOME: home, PATH: process.env["PATH"] },
    });
    const proxy = gw.proxy;
    if (proxy === undefined) throw new Error("the proxy door did not start");
    const session = await proxy.host.register({
      bottle: "bottle-a",
      routes: [],
      llmHosts: [],
      tcp: true,
    });
    const tcp = session.tcp;
    if (tcp === undefined) throw new Error("no TCP listener");
    tcpPort = tcp.port;
    proxyAuth = `Basic ${Buffer.from(`bottlekit:${tcp.token}`).toString("base64")}`;
    agent = new ProxyAgent({
      uri: `http://127.0.0.1:${tcp.port}`,
      token: proxyAuth,
      requestTls: { ca: (await proxy.host.ca("bottle-a")).certPem },
    });
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.close(0);
    fs.rmSync(home, { recursive: true, force: true });
  });

  /** The proxy's answer to a CONNECT to the approvals host: its status line. */
  function connectStatus(): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: tcpPort }, () =>
        s.write(
          `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\nProxy-Authorization: ${proxyAuth}\r\n\r\n`,
        ),
      );
      let buf = "";
      s.on("data", (d: Buffer) => {
        buf += d.toString("latin1");
        const nl = buf.indexOf("\r\n");
        if (nl >= 0) {
          s.destroy();
          resolve(buf.slice(0, nl));
        }
      });
      s.on("error", reject);
    });
  }

  /** An MCP `initialize` through the proxy, as an agent sends it. */
  async function initialize(): Promise<{ status: number; text: string }> {
    const { fetch } = await import("undici");
    const res = await fetch(`https://${HOST}/mcp`, {
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
          clientInfo: { name: "lazy-start-test", version: "0" },
        },
      }),
    });
    return { status: res.status, text: await res.text() };
  }

  it("refuses the approvals host until ready(), then serves its MCP server to a session registered before", async () => {
    expect(await connectStatus()).toMatch(/^HTTP\/1\.[01] 403 /);
    await gw.ready();
    // Idempotent: a second call loads nothing again.
    await gw.ready();
    expect(await connectStatus()).toMatch(/^HTTP\/1\.[01] 200 /);
    const after = await initialize();
    expect(after.status).toBe(200);
    expect(after.text).toContain('"serverInfo"');
  });
});

describe("startGateway({ lazyStart }): the DLP config", () => {
  it("a known secret too short to protect fails ready(), naming the variable, not its value", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "bottlekit-gw-lazy-"));
    const gw = await startGateway({
      listen: "127.0.0.1:0",
      lazyStart: true,
      env: { BOTTLEKIT_HOME: home, PATH: process.env["PATH"], OPENAI_API_KEY: "sk-abc123xyz" },
    });
    try {
      const failed = await gw.ready().then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(failed?.message).toMatch(/OPENAI_API_KEY has fewer than 12 letters and digits/);
      expect(failed?.message).not.toContain("sk-abc123xyz");
    } finally {
      await gw.close(0);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("startGateway({ lazyStart }): the proxy sessions' scanners", () => {
  it("a session registers without them, and ready() builds them: a credential too short to protect fails it", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "bottlekit-gw-lazy-"));
    const gw = await startGateway({
      listen: "127.0.0.1:0",
      proxyDoor: true,
      proxyControlSocket: false,
      lazyStart: true,
      env: { BOTTLEKIT_HOME: home, PATH: process.env["PATH"], BK_SHORT: "abc12" },
    });
    try {
      const host = gw.proxy?.host;
      if (host === undefined) throw new Error("the proxy door did not start");
      await host.register({ bottle: "bottle-s", routes: [], credentials: [{ name: "BK_SHORT" }] });
      const failed = await gw.ready().then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(failed?.message).toMatch(/BK_SHORT has fewer than/);
    } finally {
      await gw.close(0);
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
