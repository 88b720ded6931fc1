import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { APPROVALS_MCP_URL, prepareAgent } from "./agents.ts";

let dir: string;
let rules: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-agent-test-"));
  rules = path.join(dir, "..", `${path.basename(dir)}.rules`);
  fs.writeFileSync(
    rules,
    'prefix_rule(pattern = ["ls"], decision = "allow")\nprefix_rule(pattern = ["rm"], decision = "forbidden", justification = "no deleting")\n',
  );
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(rules, { force: true });
});

function hook(input: unknown): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(dir, "hook.mjs")], {
    input: typeof input === "string" ? input : JSON.stringify(input),
    encoding: "utf8",
  });
  return { status: r.status, out: r.stdout };
}

describe("claude: PreToolUse hook", () => {
  it("writes a settings file whose Bash hook runs the exec policy", () => {
    const setup = prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    expect(setup.args).toEqual([
      "--mcp-config",
      JSON.stringify({ mcpServers: { bottlekit: { type: "http", url: APPROVALS_MCP_URL } } }),
      "--settings",
      path.join(dir, "claude-settings.json"),
      "--setting-sources",
      "user",
    ]);
    expect(setup.mounts).toEqual([
      {
        source: path.join(dir, "claude-settings.json"),
        target: "/home/bottle/.claude/settings.json",
      },
    ]);
    const settings = JSON.parse(
      fs.readFileSync(path.join(dir, "claude-settings.json"), "utf8"),
    ) as {
      permissions: { allow: string[] };
      hooks: { PreToolUse: { matcher: string; hooks: { command: string }[] }[] };
    };
    // the approvals tools (list and propose only) are allowed without a prompt; nothing else is
    expect(settings.permissions.allow).toEqual(["mcp__bottlekit"]);
    expect(settings.hooks.PreToolUse[0]?.matcher).toBe("Bash");
    expect(settings.hooks.PreToolUse[0]?.hooks[0]?.command).toContain("hook.mjs");
  });

  it("denies a forbidden command with deny JSON and exit 2", () => {
    prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    const r = hook({ tool_name: "Bash", tool_input: { command: "ls && rm -rf build" } });
    expect(r.status).toBe(2);
    const out = JSON.parse(r.out) as {
      hookSpecificOutput: { permissionDecision: string; permissionDecisionReason: string };
    };
    expect(out.hookSpecificOutput.permissionDecision).toBe("deny");
    expect(out.hookSpecificOutput.permissionDecisionReason).toContain("no deleting");
  });

  it("allows an allowed command", () => {
    prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    const r = hook({ tool_name: "Bash", tool_input: { command: "ls -la" } });
    expect(r.status).toBe(0);
    expect(r.out).toContain('"allow"');
  });

  it("denies what no rule allows (prompt), since nobody can be asked", () => {
    prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    expect(hook({ tool_name: "Bash", tool_input: { command: "curl example.com" } }).status).toBe(2);
  });

  it("fails closed on unreadable input and on a broken execpolicy", () => {
    prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    expect(hook("not json").status).toBe(2);
    expect(hook({ tool_name: "Bash", tool_input: {} }).status).toBe(2);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "hook.json"), "utf8")) as Record<
      string,
      unknown
    >;
    fs.chmodSync(path.join(dir, "hook.json"), 0o644);
    fs.writeFileSync(
      path.join(dir, "hook.json"),
      JSON.stringify({ ...cfg, execpolicy: "/nonexistent/execpolicy.cjs" }),
    );
    const r = hook({ tool_name: "Bash", tool_input: { command: "ls" } });
    expect(r.status).toBe(2);
    expect(r.out).toContain('"deny"');
  });

  it("leaves other tools to Claude Code's own permissions", () => {
    prepareAgent("claude", dir, { rules: [rules], node: process.execPath });
    expect(hook({ tool_name: "Read", tool_input: { file_path: "/etc/hosts" } }).status).toBe(0);
  });
});

describe("codex: CODEX_HOME", () => {
  it("copies the bottle's .rules into a writable per-session CODEX_HOME", () => {
    const setup = prepareAgent("codex", dir, {
      rules: [rules],
      node: process.execPath,
      model: "gpt-5",
    });
    const codexHome = setup.env["CODEX_HOME"] as string;
    expect(setup.readWrite).toEqual([codexHome]);
    expect(setup.protect).toEqual([
      path.join(codexHome, "rules"),
      path.join(codexHome, "config.toml"),
    ]);
    const copied = fs.readdirSync(path.join(codexHome, "rules"));
    expect(copied).toHaveLength(1);
    expect(fs.readFileSync(path.join(codexHome, "rules", copied[0] as string), "utf8")).toBe(
      fs.readFileSync(rules, "utf8"),
    );
    expect(fs.readFileSync(path.join(codexHome, "config.toml"), "utf8")).toContain(
      'model = "gpt-5"',
    );
  });
});
