import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { ApprovalStore, type Approvals, createApprovals } from "@bottlekit/approvals";
import {
  BottleCa,
  createProxyHost,
  type ProxyHost,
  startControlServer,
} from "@bottlekit/egress-proxy";
import { createFakeUpstream, type FakeUpstream, type TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bottle, homeWith, md } from "../../test/helpers.ts";
import { agentProject, runBottle } from "../run/test-helpers.ts";

/**
 * The real Claude Code (pinned devDependency) under `bottle run`, registered with a controller in
 * this test process that has the approvals service. A local TLS server stands in for
 * api.anthropic.com (a scripted model) and for data.example.com (a host the bottle has no route
 * to). The scripted model calls the approvals MCP tool; the operator answers with the real CLI.
 */
const REAL_KEY = `sk-ant-api03-${"A".repeat(40)}-realkey`;
const claudeDir = path.join(
  path.dirname(new URL(import.meta.url).pathname),
  "..",
  "..",
  "node_modules",
  "@anthropic-ai",
  "claude-code",
);
const claudeBin = () =>
  path.join(
    path.dirname(fs.realpathSync(claudeDir)),
    `claude-code-${process.platform}-${process.arch}`,
    "claude",
  );

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let front: https.Server;
let host: ProxyHost;
let control: { close(): Promise<void> };
let approvals: Approvals;
let caDir: string;
const dataRequests: string[] = [];
/** Called (and awaited) before a model request carrying the tool result of `toolu_*` is answered. */
const gates = new Map<string, (body: string) => Promise<void>>();

function proposalIdIn(body: string): string {
  const m = /p-[0-9a-f]{10}/.exec(body);
  if (!m) throw new Error("no proposal id in the tool result");
  return m[0];
}

beforeAll(async () => {
  fake = await createFakeUpstream({ requireKey: REAL_KEY });
  caDir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-ap-e2e-ca-"));
  const ca = await BottleCa.open(caDir, "standins");
  const ctx = new Map([
    ["api.anthropic.com", await ca.contextFor("api.anthropic.com")],
    ["data.example.com", await ca.contextFor("data.example.com")],
  ]);
  front = https.createServer({ SNICallback: (n, cb) => cb(null, ctx.get(n)) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      if ((req.headers.host ?? "").startsWith("data.example.com")) {
        dataRequests.push(`${req.method} ${req.url}`);
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"items":["alpha","beta"]}\n');
        return;
      }
      const text = body.toString("utf8");
      for (const [tool, gate] of gates) {
        if (text.includes(tool) && text.includes("tool_result")) {
          gates.delete(tool);
          await gate(text);
        }
      }
      const up = http.request(
        {
          host: "127.0.0.1",
          port: fake.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", () => r()));
  const frontPort = (front.address() as AddressInfo).port;
  home = await homeWith({
    "policy.rules": 'prefix_rule(pattern = ["curl"], decision = "allow")\n',
    "bottles/netbox.md": md(
      [
        "# a bottle that may reach only its model provider",
        "agent_provider:",
        "  name: claude",
        "  credentials: [ANTHROPIC_API_KEY]",
        "exec_policy:",
        "  rules: [policy.rules]",
        "egress:",
        "  routes:",
        "    - host: api.anthropic.com  # the provider",
        "      auth:",
        "        scheme: x-api-key",
        "        token_ref: ANTHROPIC_API_KEY",
      ].join("\n"),
    ),
    "agents/coder.md": md("bottle: netbox"),
  });
  host = createProxyHost({
    home: home.dir,
    credentialSource: (spec) => (spec.name === "ANTHROPIC_API_KEY" ? REAL_KEY : undefined),
    resolve: (h, p) =>
      h === "api.anthropic.com" || h === "data.example.com"
        ? { host: "127.0.0.1", port: frontPort }
        : { host: h, port: p },
    upstreamCa: ca.certPem,
  });
  control = await startControlServer(host);
  approvals = createApprovals(host, { home: home.dir });
  project = agentProject();
}, 60_000);

afterAll(async () => {
  await approvals?.close();
  await control?.close();
  await host?.close();
  front?.close();
  await fake?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
  if (caDir) fs.rmSync(caDir, { recursive: true, force: true });
});

const claudeArgs = (prompt: string) => [
  "run",
  "coder",
  "--home",
  home.dir,
  "--cwd",
  project,
  "--agent-bin",
  claudeBin(),
  "--",
  "-p",
  prompt,
  "--model",
  "claude-sonnet-4-5",
  "--permission-mode",
  "acceptEdits",
  // no --allowedTools: bottle run allows the approvals tools in the agent's settings
];
const runEnv = () => ({ ANTHROPIC_API_KEY: REAL_KEY, HOME: os.homedir() });
const CURL = {
  command: "curl -sS https://data.example.com/v1/items",
  description: "fetch the items",
};
const toolResult = (id: string) =>
  fake.requests.map((q) => q.rawBody).find((b) => b.includes(id) && b.includes("tool_result")) ??
  "";

describe("approvals end to end with Claude Code", () => {
  it("the model proposes a route through MCP; approve --session makes its next request succeed; the next session is refused again; --persist writes the manifest diff", async () => {
    // Session 1: propose → the operator approves with --session while the model waits → curl succeeds.
    let approvedId = "";
    let approveOut = "";
    gates.set("toolu_p1", async (body) => {
      approvedId = proposalIdIn(body);
      const r = await bottle(
        ["approvals", "approve", approvedId, "--session", "--home", home.dir],
        {
          NO_COLOR: "1",
        },
      );
      approveOut = r.out;
    });
    fake.enqueue(
      {
        toolCalls: [
          {
            id: "toolu_p1",
            name: "mcp__bottlekit__propose_route_change",
            arguments: JSON.stringify({
              op: "add",
              route: {
                host: "data.example.com",
                matches: [{ methods: ["GET"], paths: [{ type: "prefix", value: "/v1" }] }],
              },
              justification: "the task needs the item list",
            }),
          },
        ],
      },
      { toolCalls: [{ id: "toolu_c1", name: "Bash", arguments: JSON.stringify(CURL) }] },
      { text: "Fetched the items." },
    );
    fake.setDefaultReply({ text: "Fetched the items." });
    const first = await runBottle(claudeArgs("fetch the items"), runEnv());
    expect(first.out, first.err).toContain("Fetched the items.");
    expect(first.code).toBe(0);
    expect(approveOut).toContain("in force in the live session");
    expect(toolResult("toolu_p1")).toContain('\\"status\\": \\"pending\\"');
    expect(dataRequests).toEqual(["GET /v1/items"]);
    expect(toolResult("toolu_c1")).toContain("alpha");
    const store = ApprovalStore.open(home.dir);
    try {
      // --session: reverted when the session ended
      expect(store.get(approvedId)).toMatchObject({
        status: "approved",
        scope: "session",
        inForce: false,
      });
      expect(store.auditLog(approvedId).map((e) => e.event)).toEqual([
        "proposed",
        "approved",
        "applied",
        "reverted",
      ]);
    } finally {
      store.close();
    }

    // Session 2: the same request is refused again; a new proposal is approved with --persist.
    let persistOut = "";
    gates.set("toolu_p2", async (body) => {
      const r = await bottle(
        ["approvals", "approve", proposalIdIn(body), "--persist", "--home", home.dir],
        {
          NO_COLOR: "1",
        },
      );
      persistOut = r.out;
    });
    fake.enqueue(
      { toolCalls: [{ id: "toolu_c2", name: "Bash", arguments: JSON.stringify(CURL) }] },
      {
        toolCalls: [
          {
            id: "toolu_p2",
            name: "mcp__bottlekit__propose_route_change",
            arguments: JSON.stringify({
              op: "add",
              route: { host: "data.example.com" },
              justification: "needed every day",
            }),
          },
        ],
      },
      { text: "Asked for good." },
    );
    const second = await runBottle(claudeArgs("fetch the items again"), runEnv());
    expect(second.out, second.err).toContain("Asked for good.");
    expect(dataRequests).toEqual(["GET /v1/items"]); // nothing reached the host
    expect(toolResult("toolu_c2")).toMatch(/403|refused|CONNECT/i);
    const file = path.join(home.dir, "bottles", "netbox.md");
    expect(persistOut).toContain(`${file}:\n--- ${file}\n+++ ${file}\n`);
    expect(persistOut).toMatch(/^\+ {4}- host: data\.example\.com$/m);
    const text = fs.readFileSync(file, "utf8");
    expect(text).toContain("    - host: api.anthropic.com  # the provider\n");
    expect(text).toContain(
      "        token_ref: ANTHROPIC_API_KEY\n    - host: data.example.com\n---\n",
    );
  }, 300_000);
});
