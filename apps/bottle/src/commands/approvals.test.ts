import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { APPROVALS_URL, type Approvals, createApprovals } from "@bottlekit/approvals";
import {
  type ControlServer,
  createProxyHost,
  type ProxyHost,
  type RegisterResult,
  startControlServer,
} from "@bottlekit/egress-proxy";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";

const run = promisify(execFile);

const MANIFEST = `---
# work bottle (comments survive --persist)
egress:
  routes:
    - host: registry.example.com   # npm mirror
---
notes
`;

let home: TempHome;
let host: ProxyHost;
let control: ControlServer;
let approvals: Approvals;
let session: RegisterResult;

/** The agent's side: one MCP `tools/call` with curl through the session's proxy listener. */
async function tool(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  const tcp = session.tcp as NonNullable<RegisterResult["tcp"]>;
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "tools/call",
    params: { name, arguments: args },
  });
  const { stdout } = await run(
    "curl",
    [
      "-sS",
      "-x",
      `http://bottlekit:${tcp.token}@127.0.0.1:${tcp.port}`,
      "--cacert",
      session.caBundlePath,
      "-H",
      "content-type: application/json",
      "-H",
      "accept: application/json, text/event-stream",
      "--data-binary",
      body,
      APPROVALS_URL,
    ],
    { timeout: 60_000 },
  );
  const res = JSON.parse(stdout) as { result: { content: { text: string }[]; isError?: boolean } };
  const text = res.result.content[0]?.text ?? "";
  return res.result.isError ? { error: text } : (JSON.parse(text) as Record<string, unknown>);
}

const env = () => ({ ...home.env, NO_COLOR: "1" });

beforeAll(async () => {
  home = await createTempHome("bk-apc-");
  await home.write("bottles/work.md", MANIFEST);
  host = createProxyHost({ home: home.dir });
  control = await startControlServer(host);
  approvals = createApprovals(host, { home: home.dir });
  session = await host.register({
    bottle: "work",
    tcp: true,
    routes: [{ host: "registry.example.com" }],
  });
});

afterAll(async () => {
  await approvals?.close();
  await control?.close();
  await host?.close();
  await home?.cleanup();
});

describe("bottle approvals", () => {
  it("list shows a pending proposal with its widening and the manifest diff (text and --json)", async () => {
    const p = await tool("propose_route_change", {
      op: "add",
      route: { host: "data.example.com" },
      justification: "fetch the dataset",
    });
    expect(p.status).toBe("pending");
    const text = await bottle(["approvals"], env());
    expect(text.code).toBe(0);
    expect(text.out).toContain(`${p.id}  pending  bottle work  route add data.example.com`);
    expect(text.out).toContain("justification: fetch the dataset");
    expect(text.out).toContain("widening: new-host data.example.com: all methods; all paths");
    expect(text.out).toContain("+    - host: data.example.com");
    const json = await bottle(["approvals", "list", "--json"], env());
    const doc = JSON.parse(json.out) as {
      proposals: { id: string; widening: unknown[]; manifest: { diff: string } }[];
    };
    expect(doc.proposals.map((x) => x.id)).toEqual([p.id]);
    expect(doc.proposals[0]?.manifest.diff).toMatch(/^\+ {4}- host: data\.example\.com$/m);
  });

  it("approve --for puts it in force in the live session through the control socket", async () => {
    const [p] = JSON.parse((await bottle(["approvals", "--json"], env())).out).proposals as {
      id: string;
    }[];
    const r = await bottle(["approvals", "approve", p?.id as string, "--for", "1h"], env());
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("in force in the live session");
    expect(host.session(session.sessionId)?.routes.map((x) => x.host)).toEqual([
      "registry.example.com",
      "data.example.com",
    ]);
    expect(await tool("proposal_status", { id: p?.id })).toMatchObject({
      status: "approved",
      in_force: true,
      scope: "for",
    });
    const again = await bottle(["approvals", "approve", p?.id as string], env());
    expect(again.code).toBe(1);
    expect(again.err).toContain("already approved");
  });

  it("approve --persist writes the manifest (comments kept) and prints the diff", async () => {
    const p = await tool("propose_route_change", {
      op: "add",
      route: { host: "api.example.com", matches: [{ methods: ["GET"] }] },
      justification: "read the API",
    });
    const r = await bottle(["approvals", "approve", p.id as string, "--persist"], env());
    expect(r.code).toBe(0);
    expect(r.out).toContain("+    - host: api.example.com");
    const text = readFileSync(join(home.dir, "bottles", "work.md"), "utf8");
    expect(text).toBe(
      MANIFEST.replace(
        "    - host: registry.example.com   # npm mirror\n",
        "    - host: registry.example.com   # npm mirror\n    - host: api.example.com\n      matches:\n        - methods:\n            - GET\n",
      ),
    );
  });

  it("deny needs --reason; the agent sees it; bad ids and flags are usage errors", async () => {
    const p = await tool("request_budget", {
      provider: "anthropic",
      tokens: 1000,
      justification: "more",
    });
    const missing = await bottle(["approvals", "deny", p.id as string], env());
    expect(missing.code).toBe(2);
    const denied = await bottle(
      ["approvals", "deny", p.id as string, "--reason", "not today", "--json"],
      env(),
    );
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.out).proposal).toMatchObject({
      status: "denied",
      reason: "not today",
    });
    expect(await tool("proposal_status", { id: p.id })).toMatchObject({
      status: "denied",
      reason: "not today",
    });
    const unknown = await bottle(["approvals", "approve", "p-nope", "--json"], env());
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.out).error.code).toBe("E_NOT_FOUND");
    expect((await bottle(["approvals", "approve", "p-x", "--for", "soon"], env())).code).toBe(2);
    expect(
      (await bottle(["approvals", "approve", "p-x", "--for", "1h", "--persist"], env())).code,
    ).toBe(2);
  });

  it("a home without a queue: nothing to list, nothing created", async () => {
    const empty = join(home.dir, "no-such-home");
    const list = await bottle(["approvals", "--home", empty], env());
    expect(list).toMatchObject({ code: 0, out: "no pending proposals\n" });
    const approve = await bottle(["approvals", "approve", "p-0000000000", "--home", empty], env());
    expect(approve.code).toBe(2);
    expect(approve.err).toContain("has no approvals queue");
    expect(existsSync(empty)).toBe(false);
  });

  it("history shows every step", async () => {
    const r = await bottle(["approvals", "history", "--json"], env());
    const events = (JSON.parse(r.out).audit as { event: string }[]).map((e) => e.event);
    expect(events).toEqual([
      "proposed",
      "approved",
      "applied",
      "proposed",
      "persisted",
      "approved",
      "applied",
      "proposed",
      "denied",
    ]);
  });
});
