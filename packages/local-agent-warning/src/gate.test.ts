import { chmod, rm } from "node:fs/promises";
import { join } from "node:path";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLAUDE, fakeBinDir } from "../test/helpers.ts";
import {
  acknowledgePending,
  evaluateLocalAgentGate,
  type GateOptions,
  readAck,
  revokeAck,
} from "./index.ts";

let home: TempHome;
let binA: string;
let binB: string;
beforeEach(async () => {
  home = await createTempHome("law-gate-");
  binA = await fakeBinDir("claude", "law-bin-a-");
  binB = await fakeBinDir("claude", "law-bin-b-");
});
afterEach(async () => {
  await home.cleanup();
  await Promise.all([binA, binB].map((d) => rm(d, { recursive: true, force: true })));
});

function gate(extra: Partial<GateOptions> = {}) {
  return evaluateLocalAgentGate({
    config: CLAUDE,
    env: { PATH: binA },
    home: home.dir,
    interactive: true,
    ...extra,
  });
}

describe("evaluateLocalAgentGate", () => {
  it("resolves the binary on PATH and the registry's default permission mode", async () => {
    const result = await gate();
    expect(result.action).toBe("warn");
    expect(result.pending).toEqual([
      expect.objectContaining({
        interface: "claude-cli",
        binary: "claude",
        binaryPath: join(binA, "claude"),
        permissionMode: "bypassPermissions",
        reasons: ["new"],
      }),
    ]);
  });

  it("unattended (interactive false) refuses with a machine-readable reason", async () => {
    const result = await gate({ interactive: false });
    expect(result.action).toBe("refuse");
    expect(result.refusal).toMatchObject({
      code: "E_LOCAL_AGENT_UNACKNOWLEDGED",
      interfaces: ["claude-cli"],
      unattendedBecause: "caller",
    });
    expect(result.refusal?.hint).toContain("--ack-local-agents");
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });

  it("CI set refuses even when the caller says interactive", async () => {
    const result = await gate({ env: { PATH: binA, CI: "true" } });
    expect(result.action).toBe("refuse");
    expect(result.refusal?.unattendedBecause).toBe("ci");
  });

  it("without an explicit interactive flag, the streams decide: both must be TTYs", async () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    for (const streams of [
      { stdin: pipe, stdout: tty },
      { stdin: tty, stdout: pipe },
    ]) {
      const result = await evaluateLocalAgentGate({
        config: CLAUDE,
        env: { PATH: binA },
        home: home.dir,
        streams,
      });
      expect(result.action).toBe("refuse");
      expect(result.refusal?.unattendedBecause).toBe("no-tty");
    }
    const both = await evaluateLocalAgentGate({
      config: CLAUDE,
      env: { PATH: binA },
      home: home.dir,
      streams: { stdin: tty, stdout: tty },
    });
    expect(both.action).toBe("warn");
  });

  it("an acknowledged run stays quiet, even unattended", async () => {
    await gate({ ackFlag: true });
    expect((await gate({ interactive: false })).action).toBe("already-acknowledged");
    expect((await gate({ env: { PATH: binA, CI: "1" } })).action).toBe("already-acknowledged");
  });

  it("a changed binary path warns again, naming the old path", async () => {
    await gate({ ackFlag: true });
    const result = await gate({ env: { PATH: binB } });
    expect(result.action).toBe("warn");
    expect(result.pending[0]?.reasons).toEqual(["binary-changed"]);
    expect(result.pending[0]?.previous?.binaryPath).toBe(join(binA, "claude"));
    expect(result.pending[0]?.binaryPath).toBe(join(binB, "claude"));
  });

  it("a binary that disappears from PATH warns again", async () => {
    await gate({ ackFlag: true });
    const result = await gate({ env: { PATH: "" } });
    expect(result.pending[0]?.reasons).toEqual(["binary-changed"]);
    expect(result.pending[0]?.binaryPath).toBeNull();
  });

  it("CLAUDE_CLI_BIN and an app override pick the binary", async () => {
    const viaEnv = await gate({ env: { PATH: "", CLAUDE_CLI_BIN: join(binB, "claude") } });
    expect(viaEnv.pending[0]?.binaryPath).toBe(join(binB, "claude"));
    const viaOverride = await gate({
      env: { PATH: binA, CLAUDE_CLI_BIN: join(binB, "claude") },
      overrides: { "claude-cli": { binary: "./claude" } },
      cwd: binA,
    });
    expect(viaOverride.pending[0]?.binaryPath).toBe(join(binA, "claude"));
  });

  it("a changed permission mode warns again", async () => {
    await gate({ ackFlag: true });
    const viaEnv = await gate({ env: { PATH: binA, CLAUDE_CLI_PERMISSION_MODE: "plan" } });
    expect(viaEnv.pending[0]?.reasons).toEqual(["permission-mode-changed"]);
    expect(viaEnv.pending[0]?.previous?.permissionMode).toBe("bypassPermissions");
    const viaOverride = await gate({
      overrides: { "Claude-Code": { permissionMode: "acceptEdits" } },
      env: { PATH: binB },
    });
    expect(viaOverride.pending[0]?.reasons).toEqual(["binary-changed", "permission-mode-changed"]);
  });

  it("acknowledging after a warning records what will run; the next run is quiet", async () => {
    const warned = await gate({ env: { PATH: binB } });
    expect(await acknowledgePending(warned, { home: home.dir })).toEqual(["claude-cli"]);
    expect((await readAck({ home: home.dir })).get("claude-cli")?.binaryPath).toBe(
      join(binB, "claude"),
    );
    expect((await gate({ env: { PATH: binB } })).action).toBe("already-acknowledged");
  });

  it("alias and case variants share one acknowledgement", async () => {
    await gate({ ackFlag: true });
    const result = await gate({
      config: {
        model_providers: [
          { model: "Claude-Code/sonnet" },
          { provider_interface: "CLAUDE_CLI", model: "opus", name: "big" },
        ],
      },
    });
    expect(result.action).toBe("already-acknowledged");
    expect(result.detected).toHaveLength(2);
    expect(result.runtimes.map((r) => r.interface)).toEqual(["claude-cli"]);
  });

  it("groups entries per interface and acks every detected interface with the flag", async () => {
    const result = await gate({
      config: {
        model_providers: [
          { name: "fast", model: "claude-cli/haiku" },
          { model: "codex/gpt-5" },
          { name: "slow", model: "claude-cli/opus" },
        ],
      },
    });
    expect(result.pending.map((p) => [p.interface, p.entries.map((e) => e.name)])).toEqual([
      ["claude-cli", ["fast", "slow"]],
      ["codex-cli", ["codex/gpt-5"]],
    ]);
    const acked = await gate({
      config: { model_providers: [{ model: "codex/gpt-5" }, { model: "claude-cli/x" }] },
      ackFlag: true,
    });
    expect(acked.acknowledged).toEqual(["claude-cli", "codex-cli"]);
    expect(acked.pending).toEqual([]);
  });

  it("revoke makes the next run warn again; revoking one interface keeps the other", async () => {
    const both = { model_providers: [{ model: "claude-cli/x" }, { model: "codex-cli/y" }] };
    await gate({ config: both, ackFlag: true });
    expect(await revokeAck(["codex-cli"], { home: home.dir })).toEqual(["codex-cli"]);
    const after = await gate({ config: both });
    expect(after.action).toBe("warn");
    expect(after.pending.map((p) => p.interface)).toEqual(["codex-cli"]);
    await revokeAck(undefined, { home: home.dir });
    expect((await gate({ config: both })).pending.map((p) => p.interface)).toEqual([
      "claude-cli",
      "codex-cli",
    ]);
  });

  it("takes the home from BOTTLEKIT_HOME in env when no home is given", async () => {
    await evaluateLocalAgentGate({
      config: CLAUDE,
      env: { PATH: binA, BOTTLEKIT_HOME: home.dir },
      ackFlag: true,
    });
    expect((await readAck({ home: home.dir })).has("claude-cli")).toBe(true);
  });

  it("nothing detected decides none and never touches the ack file", async () => {
    const result = await gate({
      config: { model_providers: [{ model: "openai/gpt-4o" }] },
      ackFlag: true,
    });
    expect(result).toMatchObject({ action: "none", detected: [], pending: [] });
    expect((await readAck({ home: home.dir })).size).toBe(0);
  });

  it("the acknowledgement covers tools, working directory, HOME and run-as account too", async () => {
    const base = { PATH: binA };
    const configured = {
      ...base,
      CLAUDE_CLI_TOOLS: "Read, Grep",
      CLAUDE_CLI_CWD: "/srv/work",
      CLAUDE_CLI_HOME: "/home/agent",
      CLAUDE_CLI_RUN_AS: "agent",
    };
    expect((await gate({ env: configured, ackFlag: true })).action).toBe("acknowledged");
    const record = (await readAck({ home: home.dir })).get("claude-cli");
    expect(record?.settings).toEqual({
      tools: "Grep,Read",
      cwd: "/srv/work",
      home: "/home/agent",
      runAs: "agent",
    });
    // The same configuration, spelled differently: still covered.
    expect(
      (await gate({ env: { ...configured, CLAUDE_CLI_TOOLS: "Grep Read,Read" } })).action,
    ).toBe("already-acknowledged");
    const changes: [Record<string, string>, string][] = [
      [{ CLAUDE_CLI_TOOLS: "Read,Grep,Bash" }, "tools-changed"],
      [{ CLAUDE_CLI_TOOLS: "" }, "tools-changed"],
      [{ CLAUDE_CLI_CWD: "/" }, "cwd-changed"],
      [{ CLAUDE_CLI_HOME: "/root" }, "home-changed"],
      [{ CLAUDE_CLI_RUN_AS: "nobody" }, "run-as-changed"],
    ];
    for (const [change, reason] of changes) {
      const result = await gate({ env: { ...configured, ...change }, interactive: false });
      expect(result.action).toBe("refuse");
      expect(result.pending[0]?.reasons).toEqual([reason]);
      expect(result.pending[0]?.fingerprint).not.toBe(record?.fingerprint);
    }
    // Two changes at once are both named.
    const both = await gate({
      env: { ...configured, CLAUDE_CLI_CWD: "/tmp", CLAUDE_CLI_RUN_AS: "1000:1000" },
    });
    expect(both.pending[0]?.reasons).toEqual(["cwd-changed", "run-as-changed"]);
    // Overrides from the app count the same as the environment.
    const viaOverride = await gate({
      env: base,
      overrides: {
        "claude-code": {
          tools: "Read,Grep",
          cwd: "/srv/work",
          home: "/home/agent",
          runAs: "agent",
        },
      },
    });
    expect(viaOverride.action).toBe("already-acknowledged");
    // A relative working directory is taken against the app's cwd: moving it is a change.
    const relative = { ...configured, CLAUDE_CLI_CWD: "work" };
    expect((await gate({ env: relative, cwd: "/srv", ackFlag: true })).action).toBe("acknowledged");
    expect((await gate({ env: relative, cwd: "/srv" })).action).toBe("already-acknowledged");
    expect((await gate({ env: relative, cwd: "/opt" })).pending[0]?.reasons).toEqual([
      "cwd-changed",
    ]);
  });

  it("an acknowledgement written before settings were recorded covers only a configuration without them", async () => {
    await home.write(
      "state/local_agent_ack.json",
      JSON.stringify({
        version: 1,
        interfaces: {
          "claude-cli": {
            acknowledgedAt: "2026-01-01T00:00:00Z",
            binary: "claude",
            binaryPath: join(binA, "claude"),
            permissionMode: "bypassPermissions",
          },
        },
      }),
    );
    await chmod(join(home.dir, "state", "local_agent_ack.json"), 0o600);
    expect((await gate()).action).toBe("already-acknowledged");
    for (const [key, setting, reason] of [
      ["CLAUDE_CLI_TOOLS", "tools", "tools-changed"],
      ["CLAUDE_CLI_CWD", "cwd", "cwd-changed"],
      ["CLAUDE_CLI_HOME", "home", "home-changed"],
      ["CLAUDE_CLI_RUN_AS", "runAs", "run-as-changed"],
    ] as const) {
      const result = await gate({ env: { PATH: binA, [key]: "x" }, interactive: false });
      expect(result.action).toBe("refuse");
      expect(result.pending[0]?.reasons).toEqual([reason]);
      expect(result.pending[0]?.previous?.settings[setting]).toBeNull();
    }
  });
});
