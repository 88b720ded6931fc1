import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DOCS_URL,
  evaluateLocalAgentGate,
  type GateOptions,
  gateResultJson,
  renderLocalAgentGate,
  renderLocalAgentWarning,
  sanitizeForTerminal,
  TRUST_TABLE,
  writeAck,
} from "./index.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("law-render-");
});
afterEach(async () => {
  await home.cleanup();
});

const SECRET = "sk-live-0123456789abcdefSECRET";
const config = {
  model_providers: [
    { name: "fast", model: "claude-cli/haiku", access_key: SECRET },
    { model: "openai/gpt-4o", access_key: `$OPENAI_API_KEY` },
    { model: "codex-cli/gpt-5-codex", headers: { Authorization: `Bearer ${SECRET}` } },
  ],
};

function gate(extra: Partial<GateOptions> = {}) {
  return evaluateLocalAgentGate({
    config,
    env: { PATH: "" },
    home: home.dir,
    interactive: true,
    ...extra,
  });
}

const ANSI = /\u001b\[/;

describe("renderLocalAgentWarning", () => {
  it("shows each pending interface, its entries, what runs, the trust table and the way out", async () => {
    const text = renderLocalAgentWarning((await gate()).pending);
    expect(text).toContain("Local-agent provider detected (claude-cli, codex-cli)");
    expect(text).toContain("entry fast (model claude-cli/haiku)");
    expect(text).toContain("entry codex-cli/gpt-5-codex");
    expect(text).toContain("claude (not found on PATH) with permission mode bypassPermissions");
    for (const row of TRUST_TABLE) {
      expect(text).toContain(row.capability);
      expect(text).toContain(row.localAgent);
    }
    expect(text).toContain("local development only");
    expect(text).toContain(`Learn more:  ${DOCS_URL}`);
    expect(text).toContain("--ack-local-agents");
    expect(text).toContain("BOTTLEKIT_ACK_LOCAL_AGENTS=1");
    expect(text).toContain("--revoke-local-agents");
  });

  it("lists only the un-acknowledged interfaces", async () => {
    await gate({ config: { model_providers: [{ model: "claude-cli/x" }] }, ackFlag: true });
    const result = await gate();
    const text = renderLocalAgentGate(result);
    expect(text).toContain("(codex-cli)");
    expect(text).not.toContain("claude-cli");
  });

  it("is plain without colour and coloured with it", async () => {
    const { pending } = await gate();
    expect(renderLocalAgentWarning(pending)).not.toMatch(ANSI);
    expect(renderLocalAgentWarning(pending, { color: false })).not.toMatch(ANSI);
    expect(renderLocalAgentWarning(pending, { color: true })).toMatch(ANSI);
  });

  it("uses the app's commands when given", async () => {
    const text = renderLocalAgentWarning((await gate()).pending, {
      ackCommand: "bottle-gateway up --ack-local-agents",
      revokeCommand: "bottle-gateway local-agents revoke",
      docsUrl: "https://example.test/docs",
    });
    expect(text).toContain("bottle-gateway up --ack-local-agents");
    expect(text).toContain("bottle-gateway local-agents revoke");
    expect(text).toContain("https://example.test/docs");
  });

  it("never shows the ack file's path, the home or a credential", async () => {
    await writeAck(
      [
        {
          interface: "claude-cli",
          binary: "claude",
          binaryPath: "/old/claude",
          permissionMode: "plan",
        },
      ],
      { home: home.dir },
    );
    for (const result of [await gate(), await gate({ interactive: false })]) {
      for (const out of [
        renderLocalAgentGate(result),
        renderLocalAgentGate(result, { color: true }),
        JSON.stringify(gateResultJson(result)),
      ]) {
        expect(out).not.toContain("local_agent_ack");
        expect(out).not.toContain(home.dir);
        expect(out).not.toContain(SECRET);
      }
    }
  });

  it("explains why an acknowledged interface warns again", async () => {
    await writeAck(
      [
        {
          interface: "claude-cli",
          binary: "claude",
          binaryPath: "/old/claude",
          permissionMode: "plan",
        },
      ],
      { home: home.dir },
    );
    const text = renderLocalAgentGate(await gate());
    expect(text).toContain("the agent binary changed since it was acknowledged (was /old/claude)");
    expect(text).toContain("the permission mode changed since it was acknowledged (was plan)");
  });

  it("shows tools, working directory, HOME and run-as account, and what changed", async () => {
    const env = {
      PATH: "",
      CLAUDE_CLI_TOOLS: "Read,Grep",
      CLAUDE_CLI_CWD: "/srv/work",
      CODEX_CLI_RUN_AS: "nobody",
    };
    const fresh = renderLocalAgentGate(await gate({ env }));
    expect(fresh).toMatch(/tools +Grep,Read \(CLAUDE_CLI_TOOLS\)/);
    expect(fresh).toMatch(/working directory +\/srv\/work \(CLAUDE_CLI_CWD\)/);
    expect(fresh).toMatch(/HOME +not set \(CLAUDE_CLI_HOME\)/);
    expect(fresh).toMatch(/runs as +not set \(CLAUDE_CLI_RUN_AS\)/);
    expect(fresh).toMatch(/runs as +nobody \(CODEX_CLI_RUN_AS\)/);
    expect(fresh).toMatch(/tools +not set \(CODEX_CLI_TOOLS\)/);
    await writeAck(
      [
        {
          interface: "claude-cli",
          binary: "claude",
          binaryPath: null,
          permissionMode: "bypassPermissions",
          settings: { tools: "Read", cwd: "/srv/work", home: null, runAs: null },
        },
      ],
      { home: home.dir },
    );
    const result = await gate({ env });
    const text = renderLocalAgentGate(result);
    expect(text).toContain("the tools changed since they were acknowledged (was Read)");
    expect(text).not.toContain("working directory changed");
    const json = gateResultJson(result).pending.find((p) => p.interface === "claude-cli");
    expect(json?.reasons).toEqual(["tools-changed"]);
    expect(json?.settings).toEqual({
      tools: "Grep,Read",
      cwd: "/srv/work",
      home: null,
      runAs: null,
    });
    expect(json?.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("escapes terminal control and bidi characters coming from the config", async () => {
    const result = await gate({
      config: {
        model_providers: [{ name: "evil\u001b]0;pwned\u0007\u202e", model: "claude-cli/x" }],
      },
    });
    const text = renderLocalAgentGate(result);
    expect(text).not.toMatch(ANSI);
    expect(text).not.toContain("\u0007");
    expect(text).not.toContain("\u202e");
    expect(text).toContain("evil\\u001b]0;pwned\\u0007\\u202e");
    expect(sanitizeForTerminal("plain")).toBe("plain");
  });
});

describe("renderLocalAgentGate", () => {
  it("renders one line per quiet outcome and the refusal after the panel", async () => {
    expect(renderLocalAgentGate(await gate({ config: {} }))).toBe("");
    const acked = renderLocalAgentGate(await gate({ ackFlag: true }));
    expect(acked).toMatch(/^✓ Acknowledged local-agent provider: claude-cli, codex-cli/);
    expect(acked.trim().split("\n")).toHaveLength(1);
    expect(renderLocalAgentGate(await gate())).toBe(
      "local-agent provider: claude-cli, codex-cli (acknowledged)\n",
    );
  });

  it("refusal text names the interfaces and the fix", async () => {
    const text = renderLocalAgentGate(await gate({ interactive: false }));
    expect(text).toContain("Local-agent provider detected");
    expect(text).toContain(
      "✗ refused: local-agent provider not acknowledged: claude-cli, codex-cli",
    );
    expect(text).toContain("--ack-local-agents");
  });
});

describe("gateResultJson", () => {
  it("carries the machine-readable refusal", async () => {
    const json = gateResultJson(await gate({ interactive: false, env: { PATH: "", CI: "1" } }));
    expect(json.action).toBe("refuse");
    expect(json.error).toMatchObject({
      code: "E_LOCAL_AGENT_UNACKNOWLEDGED",
      interfaces: ["claude-cli", "codex-cli"],
      unattendedBecause: "ci",
    });
    expect(json.pending.map((p) => [p.interface, p.entries, p.reasons])).toEqual([
      ["claude-cli", ["fast"], ["new"]],
      ["codex-cli", ["codex-cli/gpt-5-codex"], ["new"]],
    ]);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it("has no error for a quiet outcome", async () => {
    const json = gateResultJson(await gate({ ackFlag: true }));
    expect(json.error).toBeUndefined();
    expect(json.acknowledged).toEqual(["claude-cli", "codex-cli"]);
  });
});
