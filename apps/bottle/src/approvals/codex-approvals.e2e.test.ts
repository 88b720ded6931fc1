import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { type Approvals, createApprovals, TOOL_NAMES } from "@bottlekit/approvals";
import { createProxyHost, type ProxyHost, startControlServer } from "@bottlekit/egress-proxy";
import type { FakeUpstream, TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { homeWith, md } from "../../test/helpers.ts";
import {
  agentProject,
  type ProviderStandIn,
  providerStandIn,
  runBottle,
} from "../run/test-helpers.ts";

/**
 * Approvals for Codex: the same run as ../run/codex.e2e.test.ts with the approvals service in the
 * controller. The real Codex CLI (pinned devDependency, `codex exec`, Responses API) under `bottle run`,
 * against a local TLS server standing in for api.openai.com, reached only through the egress
 * proxy of a controller running in this test process (bottle run registers over its socket).
 * bottle writes the per-session CODEX_HOME: the provider through the proxy, the bottle's .rules.
 */
const REAL_KEY = `sk-proj-${"R".repeat(48)}realkey`;

function codexLauncher(): string {
  const pkg = createRequire(import.meta.url).resolve("@openai/codex/package.json");
  return path.join(path.dirname(pkg), "bin", "codex.js");
}

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let standIn: ProviderStandIn;
let host: ProxyHost;
let control: { close(): Promise<void> };
let approvals: Approvals;

beforeAll(async () => {
  standIn = await providerStandIn("api.openai.com", REAL_KEY);
  fake = standIn.fake;
  home = await homeWith({
    "policy.rules":
      'prefix_rule(pattern = ["rm"], decision = "forbidden", justification = "no deleting")\n',
    "bottles/codexbox.md": md(
      [
        "agent_provider:",
        "  name: codex",
        "  credentials: [OPENAI_API_KEY]",
        "exec_policy:",
        "  rules: [policy.rules]",
        "egress:",
        "  routes:",
        "    - host: api.openai.com",
        "      auth:",
        "        scheme: Bearer",
        "        token_ref: OPENAI_API_KEY",
      ].join("\n"),
    ),
    "agents/coder.md": md("bottle: codexbox\nmodel: gpt-5-codex"),
  });
  host = createProxyHost({
    home: home.dir,
    credentialSource: (spec) => (spec.name === "OPENAI_API_KEY" ? REAL_KEY : undefined),
    resolve: standIn.resolve,
    upstreamCa: standIn.caPem,
  });
  control = await startControlServer(host);
  approvals = createApprovals(host, { home: home.dir });
  project = agentProject();
}, 60_000);

afterAll(async () => {
  await approvals?.close();
  await control?.close();
  await host?.close();
  await standIn?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe("Codex under bottle run (approvals)", () => {
  it("codex exec gets the approvals MCP tools through the bottle proxy (mcp_servers.bottlekit)", async () => {
    fake.setDefaultReply({ text: "The answer is 42." });
    const r = await runBottle(
      [
        "run",
        "coder",
        "--home",
        home.dir,
        "--cwd",
        project,
        "--agent-bin",
        codexLauncher(),
        "--",
        "exec",
        "--skip-git-repo-check",
        "what is the answer?",
      ],
      { OPENAI_API_KEY: REAL_KEY, HOME: os.homedir() },
    );
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out.trim()).toBe("The answer is 42.");
    expect(r.code).toBe(0);
    const calls = fake.requests.filter((q) => q.api === "openai-responses");
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((q) => q.headers["authorization"] === `Bearer ${REAL_KEY}`)).toBe(true);
    expect(r.out + r.err).not.toContain(REAL_KEY);
    // Codex reached the approvals MCP server through the bottle's proxy and offers its tools
    const tools =
      (calls[0]?.body as { tools?: { name?: string; tools?: { name: string }[] }[] } | undefined)
        ?.tools ?? [];
    const ns = tools.find((t) => t.name === "mcp__bottlekit");
    expect((ns?.tools ?? []).map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
  }, 180_000);
});
