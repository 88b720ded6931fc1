import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createProxyHost, type ProxyHost, startControlServer } from "@bottlekit/egress-proxy";
import { inspectHost } from "@bottlekit/sandbox";
import type { FakeUpstream, TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  agentProject,
  type ProviderStandIn,
  providerStandIn,
  runBottle,
} from "../src/run/test-helpers.ts";
import { homeWith, md } from "./helpers.ts";

/**
 * Our own agent, `agentcli` (the built bin of the workspace package), as
 * `agent_provider: { name: agentcli }` under `bottle run`: in the bubblewrap sandbox, talking to
 * a local TLS server standing in for api.openai.com only through the egress proxy of a controller
 * in this test process, which injects the real key. Its shell tool passes the bottle's exec
 * policy: an allowed command runs, a forbidden one never does and the model gets the reason.
 */
const REAL_KEY = `sk-proj-${"A".repeat(48)}realkey`;
const AGENTCLI = fileURLToPath(new URL("../../agentcli/bin/agentcli.js", import.meta.url));

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let standIn: ProviderStandIn;
let host: ProxyHost;
let control: { close(): Promise<void> };

beforeAll(async () => {
  standIn = await providerStandIn("api.openai.com", REAL_KEY);
  fake = standIn.fake;
  home = await homeWith({
    "policy.rules":
      'prefix_rule(pattern = ["cat"], decision = "allow")\n' +
      'prefix_rule(pattern = ["rm"], decision = "forbidden", justification = "no deleting in this bottle")\n',
    "bottles/clibox.md": md(
      [
        "agent_provider:",
        "  name: agentcli",
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
    "agents/coder.md": md("bottle: clibox\nmodel: openai/gpt-4o-mini"),
  });
  host = createProxyHost({
    home: home.dir,
    credentialSource: (spec) => (spec.name === "OPENAI_API_KEY" ? REAL_KEY : undefined),
    resolve: standIn.resolve,
    upstreamCa: standIn.caPem,
  });
  control = await startControlServer(host);
  project = agentProject();
  fs.writeFileSync(path.join(project, "note.txt"), "hello from the note\n");
  const account = inspectHost({}).account;
  if (account.drop) fs.chownSync(path.join(project, "note.txt"), account.uid, account.gid);
}, 60_000);

afterAll(async () => {
  await control?.close();
  await host?.close();
  await standIn?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

/** The JSON a tool result message for `id` carries, from a recorded chat request body. */
function toolResult(body: unknown, id: string): unknown {
  const messages = (
    body as { messages?: { role: string; tool_call_id?: string; content?: unknown }[] }
  ).messages;
  const m = messages?.find((x) => x.role === "tool" && x.tool_call_id === id);
  if (m === undefined) throw new Error(`no tool result for ${id}`);
  return typeof m.content === "string" ? JSON.parse(m.content) : m.content;
}

describe("agentcli under bottle run", () => {
  it("runs allowed tools in the sandbox, never a forbidden one, with the key injected outside", async () => {
    fake.enqueue(
      {
        toolCalls: [
          { id: "c1", name: "shell", arguments: JSON.stringify({ command: "cat note.txt" }) },
          { id: "c2", name: "shell", arguments: JSON.stringify({ command: "rm -f note.txt" }) },
        ],
      },
      { text: "The note says hello." },
    );
    const r = await runBottle(
      [
        "run",
        "coder",
        "--home",
        home.dir,
        "--cwd",
        project,
        "--agent-bin",
        AGENTCLI,
        "--",
        "read the note",
      ],
      { OPENAI_API_KEY: REAL_KEY, HOME: os.homedir() },
    );
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out).toContain("The note says hello.");
    expect(r.code).toBe(0);

    const calls = fake.requests.filter((q) => q.api === "openai-chat");
    expect(calls).toHaveLength(2);
    expect(calls.every((q) => q.headers["authorization"] === `Bearer ${REAL_KEY}`)).toBe(true);
    const second = calls[1]?.body;
    expect(JSON.stringify(toolResult(second, "c1"))).toContain("hello from the note");
    expect(JSON.stringify(toolResult(second, "c2"))).toContain("no deleting in this bottle");
    // The forbidden command never ran.
    expect(fs.readFileSync(path.join(project, "note.txt"), "utf8")).toBe("hello from the note\n");
    expect(r.out + r.err).not.toContain(REAL_KEY);
  }, 180_000);
});
