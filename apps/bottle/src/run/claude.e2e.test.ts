import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createProxyHost, type ProxyHost, startControlServer } from "@bottlekit/egress-proxy";
import type { FakeUpstream, TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { homeWith, md } from "../../test/helpers.ts";
import { agentProject, type ProviderStandIn, providerStandIn, runBottle } from "./test-helpers.ts";

/**
 * The real Claude Code (pinned devDependency) under `bottle run`, against a local TLS server
 * standing in for api.anthropic.com, reached only through the egress proxy of a controller that
 * runs in this test process (bottle run registers over its control socket).
 */
const REAL_KEY = `sk-ant-api03-${"R".repeat(40)}-realkey`;
const claudeBin = path.join(
  path.dirname(new URL(import.meta.url).pathname),
  "..",
  "..",
  "node_modules",
  "@anthropic-ai",
  "claude-code",
);

function platformBinary(): string {
  // The package's postinstall (not run under pnpm without approval) would link this binary.
  const real = fs.realpathSync(claudeBin);
  const dir = path.join(
    path.dirname(real),
    `claude-code-${process.platform}-${process.arch}`,
    "claude",
  );
  return dir;
}

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let standIn: ProviderStandIn;
let host: ProxyHost;
let control: { close(): Promise<void> };

beforeAll(async () => {
  standIn = await providerStandIn("api.anthropic.com", REAL_KEY);
  fake = standIn.fake;

  home = await homeWith({
    "policy.rules":
      'prefix_rule(pattern = ["rm"], decision = "forbidden", justification = "no deleting in this bottle")\nprefix_rule(pattern = ["ls"], decision = "allow")\n',
    "bottles/claudebox.md": md(
      [
        "agent_provider:",
        "  name: claude",
        "  credentials: [ANTHROPIC_API_KEY]",
        "exec_policy:",
        "  rules: [policy.rules]",
        "egress:",
        "  routes:",
        "    - host: api.anthropic.com",
        "      auth:",
        "        scheme: x-api-key",
        "        token_ref: ANTHROPIC_API_KEY",
      ].join("\n"),
    ),
    "agents/coder.md": md("bottle: claudebox"),
  });
  host = createProxyHost({
    home: home.dir,
    credentialSource: (spec) => (spec.name === "ANTHROPIC_API_KEY" ? REAL_KEY : undefined),
    resolve: standIn.resolve,
    upstreamCa: standIn.caPem,
  });
  control = await startControlServer(host);
  project = agentProject();
  fs.writeFileSync(path.join(project, "victim.txt"), "keep me\n");
  fs.chownSync(
    path.join(project, "victim.txt"),
    fs.statSync(project).uid,
    fs.statSync(project).gid,
  );
}, 60_000);

afterAll(async () => {
  await control?.close();
  await host?.close();
  await standIn?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe("Claude Code under bottle run", () => {
  it("answers through the proxy with the key injected; the hook refuses a forbidden Bash command, even with project settings that say disableAllHooks", async () => {
    // Project settings an agent could have written (the project is writable) try to switch the
    // hooks off and allow everything: bottle run does not let Claude Code load them.
    const claudeDir = path.join(project, ".claude");
    fs.mkdirSync(claudeDir, { recursive: true });
    for (const f of ["settings.json", "settings.local.json"]) {
      fs.writeFileSync(
        path.join(claudeDir, f),
        '{"disableAllHooks": true, "permissions": {"allow": ["Bash"]}}\n',
      );
    }
    fake.enqueue(
      {
        toolCalls: [
          {
            id: "toolu_00",
            name: "Bash",
            arguments: JSON.stringify({ command: "ls", description: "list" }),
          },
        ],
      },
      {
        toolCalls: [
          {
            id: "toolu_01",
            name: "Bash",
            arguments: JSON.stringify({ command: "rm -rf victim.txt", description: "delete" }),
          },
        ],
      },
      { text: "The answer is 42." },
    );
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
        platformBinary(),
        "--",
        "-p",
        "clean up and tell me the answer",
        "--model",
        "claude-sonnet-4-5",
        "--permission-mode",
        "acceptEdits",
      ],
      { ANTHROPIC_API_KEY: REAL_KEY, HOME: os.homedir() },
    );
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out, r.err).toContain("The answer is 42.");
    expect(r.code).toBe(0);
    // The forbidden command never ran, and Claude Code was told why.
    expect(fs.readFileSync(path.join(project, "victim.txt"), "utf8")).toBe("keep me\n");
    const messages = fake.requests.filter((q) => q.api === "anthropic-messages");
    const toolResult = messages
      .map((q) => q.rawBody)
      .find((b) => b.includes("toolu_01") && b.includes("tool_result"));
    expect(toolResult).toContain("no deleting in this bottle");
    // An allowed command ran inside the sandbox and its output went back to the model.
    const listed = messages
      .map((q) => q.rawBody)
      .find((b) => b.includes("toolu_00") && b.includes("tool_result"));
    expect(listed).toContain("victim.txt");
    // The real key reached the upstream only (injected by the proxy), never the sandbox or the output.
    expect(messages.every((q) => q.headers["x-api-key"] === REAL_KEY)).toBe(true);
    expect(r.out + r.err).not.toContain(REAL_KEY);
  }, 180_000);
});
