import { once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UpstreamExchange } from "./upstream.ts";

// A real HTTP upstream and a real undici pool: the exchange is read as the respond stages read it.
let server: Server;
let pool: Pool;
/** Responses the test still holds open, by path. */
const held = new Map<string, ServerResponse>();
const closed: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? "/";
    res.on("close", () => {
      if (!res.writableFinished) closed.push(path);
    });
    if (path === "/json") {
      const body = JSON.stringify({ ok: true, pad: "x".repeat(200_000) });
      res.writeHead(200, { "content-type": "application/json", "x-ratelimit-remaining": "7" });
      res.end(body);
    } else if (path === "/chunks") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < 40; i++) res.write(`data: ${i} ${"y".repeat(16_000)}\n\n`);
      res.end();
    } else if (path === "/hold" || path === "/cut") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      held.set(path, res);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    connections: 4,
  });
});

afterAll(async () => {
  for (const res of held.values()) res.destroy();
  await pool.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const get = (path: string) => ({ path, method: "GET" as const });

describe("UpstreamExchange", () => {
  it("resolves with status and headers, then gives the whole body", async () => {
    const x = new UpstreamExchange();
    await x.send(pool, get("/json"));
    expect(x.statusCode).toBe(200);
    expect(x.headers["x-ratelimit-remaining"]).toBe("7");
    const body = JSON.parse((await x.body.bytes()).toString("utf8")) as { pad: string };
    expect(body.pad.length).toBe(200_000);
  });

  it("a slow reader gets every chunk, in order (the upstream is paused, nothing dropped)", async () => {
    const x = new UpstreamExchange();
    await x.send(pool, get("/chunks"));
    let text = "";
    let reads = 0;
    for await (const chunk of x.body) {
      reads++;
      text += chunk.toString("latin1");
      // A slow reader: the upstream keeps sending, the exchange must pause it, not lose data.
      if (reads % 5 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const seen = [...text.matchAll(/data: (\d+) /g)].map((m) => Number(m[1]));
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it("leaving the loop early aborts the upstream request", async () => {
    const x = new UpstreamExchange();
    await x.send(pool, get("/hold"));
    for await (const chunk of x.body) {
      expect(chunk.toString()).toContain("first");
      break;
    }
    for (let i = 0; i < 200 && !closed.includes("/hold"); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(closed).toContain("/hold");
  });

  it("delivers the chunks that came before a failure, then throws the failure", async () => {
    const x = new UpstreamExchange();
    await x.send(pool, get("/cut"));
    const got: string[] = [];
    let failure: unknown;
    try {
      for await (const chunk of x.body) {
        got.push(chunk.toString());
        held.get("/cut")?.destroy();
      }
    } catch (error) {
      failure = error;
    }
    expect(got.join("")).toContain("first");
    expect(failure).toBeInstanceOf(Error);
  });

  it("an abort before the request is sent rejects it with undici's abort code", async () => {
    const x = new UpstreamExchange();
    x.abort();
    await expect(x.send(pool, get("/json"))).rejects.toMatchObject({ code: "UND_ERR_ABORTED" });
  });

  it("an abort while waiting for the body rejects the read", async () => {
    const x = new UpstreamExchange();
    const path = "/hold";
    held.delete(path);
    await x.send(pool, get(path));
    const reading = x.body.bytes();
    x.abort();
    await expect(reading).rejects.toMatchObject({ code: "UND_ERR_ABORTED" });
  });
});
