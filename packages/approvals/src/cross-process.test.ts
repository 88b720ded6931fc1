import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { createProxyHost, type ProxyHost, type RegisterResult } from "@bottlekit/egress-proxy";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, makeHome, mcpClient } from "../test/harness.ts";
import { APPROVALS_URL, type Approvals, createApprovals } from "./index.ts";

const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve("tsx");

let home: string;
let host: ProxyHost;
let approvals: Approvals;
let s: RegisterResult;
let agent: Client;

beforeAll(async () => {
  home = makeHome();
  // an embedded controller: no control socket, so only the shared queue carries the decision
  host = createProxyHost({ home });
  approvals = createApprovals(host, { home });
  s = await host.register({ bottle: "work", tcp: true, routes: [] });
  const t = s.tcp as NonNullable<RegisterResult["tcp"]>;
  agent = await mcpClient(
    APPROVALS_URL,
    `http://bottlekit:${t.token}@127.0.0.1:${t.port}`,
    readFileSync(s.caCertPath, "utf8"),
  );
});

afterAll(async () => {
  await agent?.close();
  await approvals?.close();
  await host?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("the queue across processes", () => {
  it("a decision written by another process is put in force by the controller's poll", async () => {
    const p = await call(agent, "propose_route_change", {
      op: "add",
      route: { host: "data.example.com" },
      justification: "x",
    });
    const { stdout } = await run(
      process.execPath,
      [
        "--conditions=@bottlekit/source",
        "--import",
        tsx,
        join(import.meta.dirname, "..", "test", "decide-child.ts"),
        home,
        p.id as string,
      ],
      { timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toEqual({ inForce: true, controller: "poll" });
    expect(host.session(s.sessionId)?.routes.map((r) => r.host)).toEqual(["data.example.com"]);
    expect(await call(agent, "proposal_status", { id: p.id })).toMatchObject({
      status: "approved",
      in_force: true,
    });
  });
});

describe("auto: non-widening", () => {
  it("approves at once only what widens nothing", async () => {
    const h = makeHome();
    const px = createProxyHost({ home: h });
    const ap = createApprovals(px, {
      home: h,
      config: {
        timeoutMs: 60_000,
        holdTimeoutMs: 60_000,
        rateLimit: { proposals: 10, perMs: 60_000 },
        auto: "non-widening",
        providers: [],
      },
    });
    const r = await px.register({
      bottle: "work",
      tcp: true,
      routes: [
        { host: "a.example.com" },
        { host: "b.example.com", matches: [{ methods: ["GET"] }] },
      ],
    });
    const t = r.tcp as NonNullable<RegisterResult["tcp"]>;
    const c = await mcpClient(
      APPROVALS_URL,
      `http://bottlekit:${t.token}@127.0.0.1:${t.port}`,
      readFileSync(r.caCertPath, "utf8"),
    );
    try {
      const removal = await call(c, "propose_route_change", {
        op: "remove",
        route: { host: "a.example.com" },
        justification: "done with it",
      });
      expect(removal).toMatchObject({ status: "approved", scope: "auto", widening: [] });
      expect(await call(c, "proposal_status", { id: removal.id, wait_seconds: 5 })).toMatchObject({
        in_force: true,
      });
      expect(px.session(r.sessionId)?.routes.map((x) => x.host)).toEqual(["b.example.com"]);
      const wider = await call(c, "propose_route_change", {
        op: "widen",
        route: { host: "b.example.com", matches: [{ methods: ["GET", "POST"] }] },
        justification: "post too",
      });
      expect(wider).toMatchObject({
        status: "pending",
        widening: [{ kind: "broader-methods", host: "b.example.com", detail: "adds POST" }],
      });
      const narrower = await call(c, "propose_route_change", {
        op: "widen",
        route: {
          host: "b.example.com",
          matches: [{ methods: ["GET"], paths: [{ type: "prefix", value: "/v1" }] }],
        },
        justification: "less",
      });
      expect(narrower).toMatchObject({ status: "approved", scope: "auto" });
      expect(ap.store.auditLog(narrower.id as string).map((e) => e.event)).toContain(
        "auto_approved",
      );
    } finally {
      await c.close();
      await ap.close();
      await px.close();
      rmSync(h, { recursive: true, force: true });
    }
  });
});
