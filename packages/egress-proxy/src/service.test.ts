import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstreams, type Upstreams } from "../test/upstream.ts";
import {
  type AuditEvent,
  connectControl,
  createProxyHost,
  type ProxyHost,
  type ProxyService,
  type RegisterResult,
  type ServiceContext,
  type SessionDetails,
  type SupervisedRequest,
  startControlServer,
} from "./index.ts";

const run = promisify(execFile);
const RESERVED = "policy.test.internal";
const SECRET = "AKIAZ7QW3ERT5YUI8OPA";
const REAL = "ghp_R3alT0kenValueThatOnlyTheHostHolds02";

let up: Upstreams;
let home: string;
let host: ProxyHost;
let a: RegisterResult;
let b: RegisterResult;
const events: AuditEvent[] = [];
const asked: ServiceContext[] = [];
const held: SupervisedRequest[] = [];
const opened: SessionDetails[] = [];
const closed: string[] = [];
let verdict: boolean | "throw" = false;

const service: ProxyService = {
  name: "probe",
  hosts: [RESERVED],
  refusalHint: "Ask with the probe service.",
  handle(req, res, ctx) {
    asked.push(ctx);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ctx, path: req.url }));
  },
  async control(call, args) {
    if (call === "echo") return { args };
    throw new Error("unknown call");
  },
  async supervise(request) {
    held.push(request);
    if (verdict === "throw") throw new Error("broken supervisor");
    return verdict;
  },
  sessionOpened: (s) => opened.push(s),
  sessionClosed: (id) => closed.push(id),
};

function proxyUrl(r: RegisterResult): string {
  const tcp = r.tcp as NonNullable<RegisterResult["tcp"]>;
  return `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`;
}

async function curl(r: RegisterResult, url: string, args: string[] = []) {
  try {
    const { stdout } = await run(
      "curl",
      ["-sS", "-x", proxyUrl(r), "--cacert", r.caBundlePath, "-w", "\n%{http_code}", ...args, url],
      { timeout: 60_000 },
    );
    const at = stdout.lastIndexOf("\n");
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
  } catch (error) {
    const out = (error as { stdout?: string }).stdout ?? "";
    const at = out.lastIndexOf("\n");
    return { status: Number(out.slice(at + 1)) || 0, body: out.slice(0, at) };
  }
}

beforeAll(async () => {
  up = await startUpstreams(["hold.example.com", "api.github.com"]);
  home = mkdtempSync(join(tmpdir(), "bk-svc-"));
  host = createProxyHost({
    home,
    onAudit: (e) => events.push(e),
    credentialSource: (spec) => (spec.hostEnv === "BK_TEST_GH" ? REAL : undefined),
    resolve: () => ({ host: "127.0.0.1", port: up.tlsPort }),
    upstreamCa: up.caPem,
    services: [service],
  });
  a = await host.register({
    bottle: "bottle-a",
    tcp: true,
    routes: [
      {
        host: "hold.example.com",
        matches: [{ paths: [{ type: "prefix", value: "/" }] }],
        dlp: { outbound_on_match: "supervise" },
      },
    ],
  });
  b = await host.register({ bottle: "bottle-b", tcp: true, routes: [] });
});

afterAll(async () => {
  await host?.close();
  await up?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("services on reserved hosts", () => {
  it("answers a reserved host through CONNECT and plain http, with the session as identity", async () => {
    const viaTls = await curl(a, `https://${RESERVED}/mcp`);
    expect(viaTls.status).toBe(200);
    expect(JSON.parse(viaTls.body).ctx).toMatchObject({
      sessionId: a.sessionId,
      bottle: "bottle-a",
    });
    const viaHttp = await curl(b, `http://${RESERVED}/x`, [
      "-H",
      `x-bottlekit-session: ${a.sessionId}`,
    ]);
    expect(viaHttp.status).toBe(200);
    // a header naming another session changes nothing: identity is the listener
    expect(JSON.parse(viaHttp.body).ctx).toMatchObject({
      sessionId: b.sessionId,
      bottle: "bottle-b",
    });
    expect(asked.map((c) => c.bottle)).toEqual(["bottle-a", "bottle-b"]);
    expect(up.seen.some((s) => s.host.startsWith(RESERVED))).toBe(false);
    expect(events.filter((e) => e.host === RESERVED).map((e) => e.decision)).toEqual([
      "service",
      "service",
    ]);
    // counted for /metrics like every other decision
    expect(host.metricsNow().decisions.service).toBe(2);
  });

  it("a route refusal tells the agent how to ask", async () => {
    const r = await curl(b, "http://nowhere.example.com/x");
    expect(r.status).toBe(403);
    expect(r.body).toContain("no route");
    expect(r.body.trim().endsWith("Ask with the probe service.")).toBe(true);
  });

  it("a cut-off session cannot reach the service", async () => {
    await host.cutoff({ sessionId: b.sessionId });
    const r = await curl(b, `https://${RESERVED}/mcp`);
    expect(r.status).not.toBe(200);
    expect(events.at(-1)).toMatchObject({ host: RESERVED, decision: "deny_cutoff" });
    await host.restore({ sessionId: b.sessionId });
    expect(asked.length).toBe(2);
  });

  it("announces sessions and carries control calls over the socket", async () => {
    expect(opened.map((s) => s.bottle)).toEqual(["bottle-a", "bottle-b"]);
    expect(opened[0]?.routes[0]?.host).toBe("hold.example.com");
    const server = await startControlServer(host, join(home, "c.sock"));
    const client = await connectControl(server.socketPath);
    try {
      await expect(client.service("probe", "echo", { n: 1 })).resolves.toEqual({ args: { n: 1 } });
      await expect(client.service("nope", "echo")).rejects.toMatchObject({
        code: "E_UNKNOWN_SERVICE",
      });
    } finally {
      client.close();
      await server.close();
    }
    const extra = await host.register({ bottle: "bottle-c", routes: [] });
    await host.unregister(extra.sessionId);
    expect(closed).toEqual([extra.sessionId]);
    expect(() => host.addService({ ...service, name: "other" })).toThrow(/already reserved/);
  });
});

describe("DLP supervise holds", () => {
  it("denied (or a failing supervisor): 403, nothing forwarded, audited", async () => {
    const before = up.seen.length;
    verdict = false;
    const r = await curl(a, "https://hold.example.com/up", ["--data-binary", `k=${SECRET}`]);
    expect(r.status).toBe(403);
    verdict = "throw";
    const r2 = await curl(a, "https://hold.example.com/up", ["--data-binary", `k=${SECRET}`]);
    expect(r2.status).toBe(403);
    expect(up.seen.length).toBe(before);
    expect(held.at(-1)).toMatchObject({
      bottle: "bottle-a",
      host: "hold.example.com",
      path: "/up",
    });
    expect(held.at(-1)?.findings[0]?.rule).toBe("aws-access-key-id");
    const denied = events.filter((e) => e.reason === "supervise_denied");
    expect(denied.length).toBe(2);
    expect(JSON.stringify({ events, held })).not.toContain(SECRET);
  });

  it("approved: forwarded as sent, audited as supervise_approved", async () => {
    verdict = true;
    const before = up.seen.length;
    const r = await curl(a, "https://hold.example.com/up", ["--data-binary", `k=${SECRET}`]);
    expect(r.status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    expect(up.seen.at(-1)?.body).toBe(`k=${SECRET}`);
    expect(events.at(-1)).toMatchObject({ decision: "allow", reason: "supervise_approved" });
  });
});

describe("live credentials", () => {
  it("setCredentials binds a credential live; a missing value changes nothing", async () => {
    await expect(
      host.setCredentials(b.sessionId, [{ name: "NOPE", hosts: ["api.github.com"] }]),
    ).rejects.toMatchObject({ code: "E_CREDENTIAL_MISSING" });
    expect(host.session(b.sessionId)?.credentials).toEqual([]);
    await host.setCredentials(b.sessionId, [
      { name: "GITHUB_TOKEN", hostEnv: "BK_TEST_GH", hosts: ["api.github.com"] },
    ]);
    await host.replaceRoutes(b.sessionId, [{ host: "api.github.com" }]);
    const r = await curl(b, "https://api.github.com/repos", [
      "-H",
      "authorization: Bearer bottlekit:resolve:env:GITHUB_TOKEN",
    ]);
    expect(r, JSON.stringify(events.slice(-2))).toMatchObject({ status: 200 });
    expect(up.seen.at(-1)?.headers.authorization).toBe(`Bearer ${REAL}`);
    expect(JSON.stringify(host.session(b.sessionId))).not.toContain(REAL);
  });
});
