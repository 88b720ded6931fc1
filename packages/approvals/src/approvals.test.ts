import { readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import {
  type ControlServer,
  createProxyHost,
  type ProxyHost,
  type RegisterResult,
  startControlServer,
} from "@bottlekit/egress-proxy";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  call,
  makeHome,
  mcpClient,
  proxiedFetch,
  startUpstream,
  type Upstream,
} from "../test/harness.ts";
import {
  APPROVALS_URL,
  ApprovalStore,
  type Approvals,
  createApprovals,
  decide,
  manifestPreview,
  TOOL_NAMES,
} from "./index.ts";

const GH_VALUE = "ghp_TheRealValueOnlyTheControllerHolds99";
const SECRET = "AKIAZ7QW3ERT5YUI8OPA";

let up: Upstream;
let home: string;
let host: ProxyHost;
let control: ControlServer;
let approvals: Approvals;
let operator: ApprovalStore;
let clock = Date.parse("2026-12-05T12:00:00Z");
const now = () => clock;
const budgets: { provider: string; tokens: number; bottle: string }[] = [];
let a: RegisterResult;
let b: RegisterResult;
let agentA: Client;
let agentB: Client;

const proxyUrl = (r: RegisterResult) => {
  const t = r.tcp as NonNullable<RegisterResult["tcp"]>;
  return `http://bottlekit:${t.token}@127.0.0.1:${t.port}`;
};
const caPem = (r: RegisterResult) => readFileSync(r.caCertPath, "utf8");

/** A request from inside bottle `r` to `url`; status (0 when the proxy refused the CONNECT). */
async function egress(r: RegisterResult, url: string, init: RequestInit = {}): Promise<number> {
  try {
    const res = await proxiedFetch(proxyUrl(r), caPem(r))(url, init);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

beforeAll(async () => {
  up = await startUpstream([
    "data.example.com",
    "api.github.com",
    "hold.example.com",
    "registry.example.com",
  ]);
  home = makeHome();
  host = createProxyHost({
    home,
    resolve: () => ({ host: "127.0.0.1", port: up.port }),
    upstreamCa: up.caPem,
    credentialSource: (spec) => (spec.hostEnv === "BK_APPROVALS_GH" ? GH_VALUE : undefined),
  });
  control = await startControlServer(host);
  approvals = createApprovals(host, {
    now,
    pollMs: 50,
    onBudget: (g) => {
      budgets.push({ provider: g.provider, tokens: g.tokens, bottle: g.bottle });
    },
  });
  operator = ApprovalStore.open(home, now);
  a = await host.register({
    bottle: "work",
    tcp: true,
    routes: [
      { host: "registry.example.com" },
      { host: "hold.example.com", dlp: { outbound_on_match: "supervise" } },
    ],
  });
  b = await host.register({ bottle: "other", tcp: true, routes: [] });
  agentA = await mcpClient(APPROVALS_URL, proxyUrl(a), caPem(a));
  agentB = await mcpClient(APPROVALS_URL, proxyUrl(b), caPem(b));
});

afterAll(async () => {
  await agentA?.close();
  await agentB?.close();
  await approvals?.close();
  operator?.close();
  await control?.close();
  await host?.close();
  await up?.close();
  rmSync(home, { recursive: true, force: true });
});

describe("the agent's tools (MCP SDK client through the real proxy)", () => {
  it("lists exactly the agent tools: nothing that approves", async () => {
    const { tools } = await agentA.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    const r = await agentA
      .callTool({ name: "approve", arguments: { id: "x" } })
      .catch((e: Error) => ({ thrown: e.message }));
    expect(JSON.stringify(r)).toMatch(/not found|unknown tool/i);
    expect(
      await egress(a, "https://policy.bottlekit.internal/approve", { method: "POST", body: "{}" }),
    ).toBe(404);
  });

  it("list_routes and list_providers show names and placeholders, never values", async () => {
    const routes = await call(agentA, "list_routes");
    expect(routes.bottle).toBe("work");
    expect((routes.routes as { host: string }[]).map((r) => r.host)).toEqual([
      "registry.example.com",
      "hold.example.com",
    ]);
    const providers = await call(agentA, "list_providers");
    expect(providers.providers).toEqual([
      {
        name: "GH_TOKEN",
        hosts: ["api.github.com"],
        placeholder: "bottlekit:resolve:env:GH_TOKEN",
        attached: false,
      },
    ]);
    expect(JSON.stringify({ routes, providers })).not.toContain(GH_VALUE);
  });

  it("check_command answers with the bottle's exec policy and the reason", async () => {
    const ok = await call(agentA, "check_command", { script: "git status && git status" });
    expect(ok.decision).toBe("allow");
    const no = await call(agentA, "check_command", { script: "git status; rm -rf /" });
    expect(no).toMatchObject({ decision: "forbidden", reason: "use trash" });
    const other = await call(agentB, "check_command", { script: "git status" });
    expect(other.decision).toBe("unchecked");
  });

  it("a bad route is refused with the schema's key path; nothing is filed", async () => {
    const before = operator.list().length;
    const r = await call(agentA, "propose_route_change", {
      op: "add",
      route: {
        host: "Data.Example.com",
        matches: [{ paths: [{ type: "prefix", value: "nope" }] }],
      },
      justification: "x",
    });
    expect(r.error).toMatch(/egress\.routes\[0\]\.host/);
    expect(r.error).toMatch(/egress\.routes\[0\]\.matches\[0\]\.paths\[0\]\.value/);
    expect(operator.list().length).toBe(before);
  });
});

describe("a route: proposed, approved for a while, live, reverted at expiry, persisted", () => {
  let id = "";

  it("the agent proposes a host it cannot reach; the operator sees the widening and the manifest diff", async () => {
    expect(await egress(a, "https://data.example.com/v1/items")).toBe(0);
    // the refusal tells the agent how to ask (plain http: the 403 body reaches the client)
    const t = a.tcp as NonNullable<RegisterResult["tcp"]>;
    const refused = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: t.port,
          path: "http://data.example.com/v1/items",
          headers: {
            "proxy-authorization": `Basic ${Buffer.from(`bottlekit:${t.token}`).toString("base64")}`,
          },
        },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => {
            body += c.toString("utf8");
          });
          res.on("end", () => resolve(`${res.statusCode} ${body}`));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(refused).toMatch(/^403 /);
    expect(refused).toContain(
      `call propose_route_change on the bottlekit MCP server (${APPROVALS_URL})`,
    );
    const p = await call(agentA, "propose_route_change", {
      op: "add",
      route: {
        host: "data.example.com",
        matches: [{ methods: ["GET"], paths: [{ type: "prefix", value: "/v1" }] }],
      },
      justification: "the task reads the item list",
    });
    expect(p).toMatchObject({ status: "pending", in_force: false });
    id = p.id as string;
    const pending = operator.list({ status: "pending" });
    const mine = pending.find((q) => q.id === id);
    expect(mine?.widening).toEqual([
      { kind: "new-host", host: "data.example.com", detail: "GET; /v1*" },
    ]);
    const preview = manifestPreview(home, mine as NonNullable<typeof mine>);
    expect(preview.diff).toContain("+    - host: data.example.com");
    expect(preview.diff?.split("\n").filter((l) => /^-(?!--)/.test(l))).toEqual([]);
  });

  it("another bottle cannot see it", async () => {
    const r = await call(agentB, "proposal_status", { id });
    expect(r.error).toMatch(/no proposal/);
    expect(await call(agentB, "list_routes")).toMatchObject({ bottle: "other", routes: [] });
  });

  it("approve --for: in force through the control socket, the next request succeeds; revert at expiry", async () => {
    const r = await decide(operator, id, { home, approve: true, scope: "for", forMs: 60 * 60_000 });
    expect(r.controller).toBe("socket");
    expect(r.proposal.inForce).toBe(true);
    const status = await call(agentA, "proposal_status", { id, wait_seconds: 5 });
    expect(status).toMatchObject({ status: "approved", in_force: true, scope: "for" });
    const seen = up.seen.length;
    expect(await egress(a, "https://data.example.com/v1/items")).toBe(200);
    expect(up.seen.length).toBe(seen + 1);
    expect(await egress(a, "https://data.example.com/v2/other")).toBe(403); // only what was approved
    expect(await egress(b, "https://data.example.com/v1/items")).toBe(0); // only this bottle
    clock += 60 * 60_000 + 1;
    const sync = await approvals.sync();
    expect(sync.reverted).toEqual([id]);
    expect(await egress(a, "https://data.example.com/v1/items")).toBe(0);
    expect(operator.get(id)).toMatchObject({ inForce: false });
    expect(operator.auditLog(id).map((e) => e.event)).toEqual([
      "proposed",
      "approved",
      "applied",
      "reverted",
    ]);
  });

  it("approve --persist writes the route into the manifest, comments kept, and shows the diff", async () => {
    const p = await call(agentA, "propose_route_change", {
      op: "add",
      route: {
        host: "data.example.com",
        matches: [{ methods: ["GET"], paths: [{ type: "prefix", value: "/v1" }] }],
      },
      justification: "needed for good",
    });
    const r = await decide(operator, p.id as string, { home, approve: true, scope: "persist" });
    const file = join(home, "bottles", "work.md");
    expect(r.persisted?.file).toBe(file);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("# the work bottle: comments and layout survive --persist");
    expect(text).toContain("outbound_on_match: supervise  # the operator decides");
    expect(text).toContain("    - host: data.example.com\n      matches:");
    expect(text.endsWith("---\nNotes about the bottle.\n")).toBe(true);
    expect(r.persisted?.diff).toMatch(/^\+ {4}- host: data\.example\.com$/m);
    expect(
      r.persisted?.diff.split("\n").filter((l) => l.startsWith("-") && !l.startsWith("---")),
    ).toEqual([]);
    expect(r.proposal.inForce).toBe(true);
    expect(await egress(a, "https://data.example.com/v1/items")).toBe(200);
  });
});

describe("providers, budgets, timeouts, rate limits, auto", () => {
  it("a credential cannot be requested for a host it is not bound to", async () => {
    const r = await call(agentA, "request_provider", {
      provider: "GH_TOKEN",
      host: "evil.example.com",
      justification: "x",
    });
    expect(r.error).toMatch(/not bound to evil\.example\.com/);
    const w = await call(agentA, "request_provider", {
      provider: "GH_TOKEN",
      host: "*.github.com",
      justification: "x",
    });
    expect(w.error).toMatch(/not bound/);
    const u = await call(agentA, "request_provider", {
      provider: "AWS",
      host: "api.github.com",
      justification: "x",
    });
    expect(u.error).toMatch(/no host-managed credential/);
  });

  it("a route proposal cannot carry a credential that is not bound to its host", async () => {
    const before = operator.list().length;
    const r = await call(agentA, "propose_route_change", {
      op: "add",
      route: { host: "evil.example.com", auth: { scheme: "Bearer", token_ref: "GH_TOKEN" } },
      justification: "x",
    });
    expect(r.error).toMatch(/credential GH_TOKEN is not bound to evil\.example\.com/);
    expect(operator.list().length).toBe(before);
  });

  it("an approved provider is attached live, bound to the one host; the value never leaves the controller", async () => {
    const p = await call(agentA, "request_provider", {
      provider: "GH_TOKEN",
      host: "api.github.com",
      justification: "open a PR",
    });
    expect((p.widening as { kind: string }[]).map((w) => w.kind)).toEqual([
      "new-host",
      "credentials-attached",
    ]);
    const r = await decide(operator, p.id as string, { home, approve: true, scope: "session" });
    expect(r.proposal.inForce).toBe(true);
    const headers = { authorization: "Bearer bottlekit:resolve:env:GH_TOKEN" };
    expect(await egress(a, "https://api.github.com/user", { headers })).toBe(200);
    expect(up.seen.at(-1)?.authorization).toBe(`Bearer ${GH_VALUE}`);
    // the same placeholder toward another approved host is refused
    expect(await egress(a, "https://data.example.com/v1/x", { headers })).toBe(403);
    expect(JSON.stringify(operator.list())).not.toContain(GH_VALUE);
    expect(JSON.stringify(operator.auditLog())).not.toContain(GH_VALUE);
  });

  it("request_budget: validated, approved, handed to the budget hook", async () => {
    const bad = await call(agentA, "request_budget", {
      provider: "Bad Provider",
      tokens: 5,
      justification: "x",
    });
    expect(bad.error).toMatch(/budget/);
    const p = await call(agentA, "request_budget", {
      provider: "anthropic",
      tokens: 200000,
      justification: "long task",
    });
    await decide(operator, p.id as string, { home, approve: true });
    const s = await call(agentA, "proposal_status", { id: p.id, wait_seconds: 5 });
    expect(s).toMatchObject({ status: "approved", in_force: true });
    expect(budgets).toEqual([{ provider: "anthropic", tokens: 200000, bottle: "work" }]);
  });

  it("unattended: a pending proposal is denied at the timeout (fail closed), and cannot be approved after", async () => {
    const p = await call(agentB, "propose_route_change", {
      op: "add",
      route: { host: "data.example.com" },
      justification: "x",
    });
    clock += 10 * 60_000 + 1;
    const r = await approvals.sync();
    expect(r.expired).toContain(p.id);
    expect(await call(agentB, "proposal_status", { id: p.id })).toMatchObject({
      status: "expired",
      in_force: false,
    });
    await expect(decide(operator, p.id as string, { home, approve: true })).rejects.toMatchObject({
      code: "E_STATE",
    });
    expect(await egress(b, "https://data.example.com/")).toBe(0);
  });

  it("deny needs a reason and is reported to the agent", async () => {
    const p = await call(agentB, "propose_route_change", {
      op: "add",
      route: { host: "data.example.com" },
      justification: "x",
    });
    await expect(decide(operator, p.id as string, { home, approve: false })).rejects.toMatchObject({
      code: "E_INVALID_INPUT",
    });
    await decide(operator, p.id as string, { home, approve: false, reason: "not for this task" });
    expect(await call(agentB, "proposal_status", { id: p.id, wait_seconds: 1 })).toMatchObject({
      status: "denied",
      reason: "not for this task",
    });
  });

  it("rate limit per session: the 13th proposal within the window is refused and not filed", async () => {
    const c = await host.register({ bottle: "noisy", tcp: true, routes: [] });
    const agentC = await mcpClient(APPROVALS_URL, proxyUrl(c), caPem(c));
    try {
      for (let i = 0; i < 12; i++) {
        const r = await call(agentC, "request_budget", {
          provider: "openai",
          tokens: 10 + i,
          justification: "x",
        });
        expect(r.status).toBe("pending");
      }
      const r = await call(agentC, "request_budget", {
        provider: "openai",
        tokens: 99,
        justification: "x",
      });
      expect(r.error).toMatch(/too many proposals/);
      expect(operator.list({ sessionId: c.sessionId }).length).toBe(12);
      // another session is not limited by this one
      const other = await call(agentB, "request_budget", {
        provider: "openai",
        tokens: 5,
        justification: "x",
      });
      expect(other.status).toBe("pending");
    } finally {
      await agentC.close();
      await host.unregister(c.sessionId);
    }
    expect(operator.list({ sessionId: c.sessionId }).every((p) => p.status === "expired")).toBe(
      true,
    );
  });
});

describe("DLP supervise holds", () => {
  async function heldRequest(): Promise<{ id: string; result: Promise<number> }> {
    const before = new Set(operator.list().map((p) => p.id));
    const result = egress(a, "https://hold.example.com/upload", {
      method: "POST",
      body: `key=${SECRET}`,
    });
    for (let i = 0; i < 200; i++) {
      const held = operator
        .list({ status: "pending" })
        .find((p) => !before.has(p.id) && p.change.kind === "dlp_hold");
      if (held) return { id: held.id, result };
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error("no hold was filed");
  }

  it("approved: the held request is sent as written", async () => {
    const seen = up.seen.length;
    const { id, result } = await heldRequest();
    expect(up.seen.length).toBe(seen); // held: nothing forwarded yet
    const p = operator.get(id);
    expect(p?.change).toMatchObject({
      kind: "dlp_hold",
      host: "hold.example.com",
      path: "/upload",
    });
    expect(JSON.stringify(p)).not.toContain(SECRET);
    await decide(operator, id, { home, approve: true });
    expect(await result).toBe(200);
    expect(up.seen.at(-1)?.body).toBe(`key=${SECRET}`);
  });

  it("denied, or unattended until the hold timeout: refused, nothing forwarded", async () => {
    const seen = up.seen.length;
    const first = await heldRequest();
    await decide(operator, first.id, { home, approve: false, reason: "that is a key" });
    expect(await first.result).toBe(403);
    const second = await heldRequest();
    clock += 60_000 + 1;
    expect(await second.result).toBe(403);
    expect(operator.get(second.id)).toMatchObject({ status: "expired", decidedBy: "timeout" });
    expect(up.seen.length).toBe(seen);
  });
});

describe("the stdio shim", () => {
  it("forwards stdio MCP through HTTPS_PROXY to the bottle's own approvals server", async () => {
    const { PassThrough } = await import("node:stream");
    const { runStdioShim } = await import("./index.ts");
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let out = "";
    stdout.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    const done = runStdioShim({ stdin, stdout, env: { HTTPS_PROXY: proxyUrl(b) }, ca: caPem(b) });
    const msg = (m: unknown) => stdin.write(`${JSON.stringify(m)}\n`);
    msg({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "shim-test", version: "1" },
      },
    });
    msg({ jsonrpc: "2.0", method: "notifications/initialized" });
    msg({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "list_routes", arguments: {} },
    });
    stdin.write("not json\n");
    stdin.end();
    expect(await done).toBe(3);
    const lines = out
      .trim()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            id: unknown;
            result?: { content?: { text: string }[] };
            error?: unknown;
          },
      );
    expect(lines.map((l) => l.id)).toEqual([1, 2, null]);
    expect(JSON.parse(lines[1]?.result?.content?.[0]?.text ?? "{}"), out).toMatchObject({
      bottle: "other",
    });
  });
});
