import { createServer, type Server } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { completion, type Sandbox, sandbox, scriptedServer } from "./helpers.ts";

let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.cleanup();
});

const rateLimited = (headers: Record<string, string>) => ({
  status: 429,
  headers,
  body: {
    error: {
      message: "Rate limit reached",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    },
  },
});

describe("model calls", () => {
  it("retries 429s, honouring retry-after-ms and retry-after, with one idempotency key", async () => {
    const srv = await scriptedServer([
      rateLimited({ "retry-after-ms": "5" }),
      rateLimited({ "retry-after": "0" }),
      { body: completion("third time lucky", "stop") },
    ]);
    try {
      const r = await sb.run(["-m", "m", "--http-retries", "2", "hi"], {
        AGENTCLI_BASE_URL: srv.url,
      });
      expect(r.code).toBe(0);
      expect(r.out).toBe("third time lucky\n");
      expect(srv.requests).toHaveLength(3);
      const keys = new Set(srv.requests.map((q) => q.headers["idempotency-key"]));
      expect(keys.size).toBe(1);
      const attempts = (await sb.auditLines()).filter((l) => l["event"] === "http.attempt");
      expect(attempts.map((a) => [a["status"], a["backoffMs"]])).toEqual([
        [429, 5],
        [429, 0],
        [200, undefined],
      ]);
    } finally {
      await srv.close();
    }
  });

  it("x-should-retry: false stops retries of a 5xx; x-should-retry: true retries a 400", async () => {
    const srv = await scriptedServer([
      {
        status: 503,
        headers: { "x-should-retry": "false" },
        body: { error: { message: "down", type: "server_error" } },
      },
    ]);
    try {
      const r = await sb.run(["-m", "m", "hi"], { AGENTCLI_BASE_URL: srv.url });
      expect(r.code).toBe(1);
      expect(srv.requests).toHaveLength(1);
      expect(r.err).toContain("HTTP 503: down");
    } finally {
      await srv.close();
    }
    const srv2 = await scriptedServer([
      {
        status: 400,
        headers: { "x-should-retry": "true" },
        body: { error: { message: "flaky", type: "invalid_request_error" } },
      },
      { body: completion("ok", "stop") },
    ]);
    try {
      const r = await sb.run(["-m", "m", "hi"], { AGENTCLI_BASE_URL: srv2.url });
      expect(r.code).toBe(0);
      expect(srv2.requests).toHaveLength(2);
    } finally {
      await srv2.close();
    }
  });

  it("resends once with a larger max_tokens after finish_reason length", async () => {
    const srv = await scriptedServer([
      { body: completion("The answer is cut", "length") },
      { body: completion("The whole answer.", "stop") },
    ]);
    try {
      const r = await sb.run(["-m", "m", "--json", "explain"], { AGENTCLI_BASE_URL: srv.url });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({
        answer: "The whole answer.",
        steps: 1,
        usage: { modelCalls: 2, total: 30 },
      });
      expect(srv.requests).toHaveLength(2);
      expect(srv.requests[0]?.body["max_tokens"]).toBeUndefined();
      expect(Number(srv.requests[1]?.body["max_tokens"])).toBeGreaterThanOrEqual(256);
      // the cut answer is not part of the conversation
      expect(srv.requests[1]?.body["messages"]).toEqual(srv.requests[0]?.body["messages"]);
    } finally {
      await srv.close();
    }
  });

  it("an endpoint that is down: retried, then exit 1 naming the cause", async () => {
    const srv = await scriptedServer([]);
    const url = srv.url;
    await srv.close(); // nothing listens there any more
    const r = await sb.run(["-m", "m", "--http-retries", "1", "hi"], { AGENTCLI_BASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.err).toContain("ECONNREFUSED");
    const attempts = (await sb.auditLines()).filter((l) => l["event"] === "http.attempt");
    expect(attempts).toHaveLength(2);
  });

  it("a wrong key is exit 1 with a hint, not retried", async () => {
    const r = await sb.run(["-m", "m", "hi"], { TEST_UPSTREAM_KEY: "wrong" });
    expect(r.code).toBe(1);
    expect(r.err).toContain("HTTP 401");
    expect(r.err).toContain("hint:");
    expect(sb.upstream.requests).toHaveLength(1);
  });

  it("goes through HTTPS_PROXY/HTTP_PROXY when set (bottle run's proxy door)", async () => {
    const tunnels: string[] = [];
    const sockets = new Set<Socket>();
    const proxy: Server = createServer();
    proxy.on("connect", (req, client: Socket) => {
      tunnels.push(String(req.url));
      const [host, port] = String(req.url).split(":");
      const up = connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        up.pipe(client);
        client.pipe(up);
      });
      sockets.add(up).add(client);
      up.on("error", () => client.destroy());
      client.on("error", () => up.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const port = (proxy.address() as AddressInfo).port;
    try {
      sb.upstream.enqueue({ text: "via the proxy" });
      const r = await sb.run(["-m", "m", "hi"], {
        HTTP_PROXY: `http://127.0.0.1:${port}`,
        HTTPS_PROXY: `http://127.0.0.1:${port}`,
      });
      expect(r.err).toBe("");
      expect(r.out).toBe("via the proxy\n");
      expect(tunnels).toEqual([new URL(sb.upstream.url).host]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
