import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { SANDBOX_HOME } from "@bottlekit/sandbox";
import type { AgentKind } from "./plan.ts";

/**
 * The PreToolUse hook Claude Code runs before every Bash call. It asks execpolicy about the
 * command and fails closed: anything but a clean "allow" is a deny JSON and exit 2 (Claude Code
 * treats exit 1 as a non-blocking error and would run the command).
 */
export const CLAUDE_HOOK_SOURCE = String.raw`
import { spawnSync } from "node:child_process";
import fs from "node:fs";

const config = JSON.parse(fs.readFileSync(new URL("./hook.json", import.meta.url), "utf8"));
function deny(reason) {
  process.stdout.write(JSON.stringify({
    hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: reason },
  }) + "\n");
  process.stderr.write(reason + "\n");
  process.exit(2);
}
try {
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  if (input.tool_name !== "Bash") process.exit(0);
  const command = input.tool_input && input.tool_input.command;
  if (typeof command !== "string" || command.length === 0) deny("bottle: no command to check");
  const args = [config.execpolicy, "check"];
  for (const r of config.rules) args.push("-r", r);
  args.push("--shell", command);
  const r = spawnSync(config.node, args, { encoding: "utf8", timeout: 10000, maxBuffer: 8 * 1024 * 1024 });
  if (r.error || (r.status !== 0 && r.status !== 3)) deny("bottle: the exec policy check failed; the command is refused");
  const verdict = JSON.parse(r.stdout);
  if (verdict.decision === "allow") {
    process.stdout.write(JSON.stringify({ hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "allow", permissionDecisionReason: "bottle exec policy: allow" } }) + "\n");
    process.exit(0);
  }
  const why = (verdict.matchedRules || []).map((m) => m.justification).filter(Boolean)[0];
  deny("bottle exec policy: " + verdict.decision + (why ? " (" + why + ")" : ""));
} catch (e) {
  deny("bottle: the exec policy hook failed (" + (e && e.message ? e.message : "error") + "); the command is refused");
}
`;

/** Where the execpolicy CLI lives (run inside the sandbox with the host's Node, read-only). */
export function execpolicyBin(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("@bottlekit/execpolicy/package.json");
  return path.join(path.dirname(pkg), "bin", "execpolicy.cjs");
}

export interface AgentSetup {
  /** Extra argv for the agent CLI (inserted after the program). */
  args: string[];
  /** Extra env (names and values; no credentials). */
  env: Record<string, string>;
  /** Host paths the sandbox must show read-only (rules, execpolicy). */
  readOnly: string[];
  /** Host paths the sandbox must make writable (e.g. CODEX_HOME). */
  readWrite: string[];
  /** Host files shown read-only at another path (e.g. Claude Code's user settings). */
  mounts: { source: string; target: string }[];
  /** Paths inside writable ones kept read-only (e.g. CODEX_HOME's rules and config). */
  protect: string[];
  /** Files written, relative to the agent dir (for --dry-run and tests). */
  files: string[];
}

/**
 * The approvals MCP server (@bottlekit/approvals' `APPROVALS_URL`): served by the host controller
 * at a reserved host that only the bottle's own proxy answers, so it needs no credential.
 */
export const APPROVALS_MCP_NAME = "bottlekit";
export const APPROVALS_MCP_URL = "https://policy.bottlekit.internal/mcp";
const APPROVALS_MCP_CONFIG = {
  mcpServers: { [APPROVALS_MCP_NAME]: { type: "http", url: APPROVALS_MCP_URL } },
};

/** Renders a string as a TOML basic string. */
function tomlString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Writes the per-session agent files into `dir` (shown read-only in the sandbox at the same path,
 * except CODEX_HOME which is writable) and returns how to start the agent with them.
 */
export function prepareAgent(
  kind: AgentKind,
  dir: string,
  opts: { rules: string[]; node: string; llmBaseUrl?: string; model?: string; credential?: string },
): AgentSetup {
  const setup: AgentSetup = {
    args: [],
    env: {},
    readOnly: [dir],
    readWrite: [],
    files: [],
    mounts: [],
    protect: [],
  };
  const write = (name: string, text: string, mode = 0o644) => {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text, { mode });
    setup.files.push(name);
  };
  // The rules are copied into the session directory: the home they live in is hidden in the
  // sandbox (and may be readable by root only).
  const rules = opts.rules
    .filter((r) => fs.existsSync(r))
    .map((r, i) => {
      const copy = path.join(dir, "rules", `${String(i).padStart(2, "0")}-${path.basename(r)}`);
      fs.mkdirSync(path.dirname(copy), { recursive: true });
      fs.copyFileSync(r, copy);
      setup.files.push(path.relative(dir, copy));
      return copy;
    });
  const codexRules = rules.filter((r) => r.endsWith(".rules"));
  if (kind === "claude") {
    const execpolicy = execpolicyBin();
    setup.readOnly.push(path.dirname(path.dirname(execpolicy)));
    write("hook.mjs", CLAUDE_HOOK_SOURCE);
    write("hook.json", JSON.stringify({ node: opts.node, execpolicy, rules }));
    const settings = {
      // The approvals tools only list and propose (nothing approves from inside the bottle), so
      // the agent may call them without a permission prompt, which `-p` mode could not answer.
      permissions: { allow: [`mcp__${APPROVALS_MCP_NAME}`] },
      hooks: {
        PreToolUse: [
          {
            matcher: "Bash",
            hooks: [
              {
                type: "command",
                command: `${opts.node} ${path.join(dir, "hook.mjs")}`,
                timeout: 30,
              },
            ],
          },
        ],
      },
    };
    write("claude-settings.json", `${JSON.stringify(settings, null, 2)}\n`);
    // --- approvals (issue 19): the controller's MCP server, reached through the bottle's proxy.
    // Before the --settings flags: --mcp-config takes several values and a flag ends the list.
    setup.args.push("--mcp-config", JSON.stringify(APPROVALS_MCP_CONFIG));
    // The hook is both the flag settings and the user settings, mounted read-only in the home;
    // project and local settings files (which the agent can write, e.g. `disableAllHooks`) are
    // not loaded at all.
    setup.args.push(
      "--settings",
      path.join(dir, "claude-settings.json"),
      "--setting-sources",
      "user",
    );
    setup.mounts.push({
      source: path.join(dir, "claude-settings.json"),
      target: `${SANDBOX_HOME}/.claude/settings.json`,
    });
    setup.env["DISABLE_AUTOUPDATER"] = "1";
    setup.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1";
  } else if (kind === "codex") {
    // CODEX_HOME must be writable (Codex keeps sessions and logs there): a host directory of the session.
    const codexHome = path.join(dir, "codex-home");
    fs.mkdirSync(path.join(codexHome, "rules"), { recursive: true });
    codexRules.forEach((r, i) => {
      fs.copyFileSync(
        r,
        path.join(
          codexHome,
          "rules",
          `${String(i).padStart(2, "0")}-${path.basename(r).replace(/\.[^.]*$/, "")}.rules`,
        ),
      );
      setup.files.push(`codex-home/rules/${path.basename(r)}`);
    });
    // The provider is reached through the egress proxy (which injects the real key); Codex sends
    // Authorization only from the env_key variable, which holds a placeholder inside.
    const lines = [
      "# written by bottle run for this session",
      ...(opts.model ? [`model = ${tomlString(opts.model)}`] : []),
      'model_provider = "bottlekit"',
      "",
      "[model_providers.bottlekit]",
      'name = "OpenAI through the egress proxy"',
      `base_url = ${tomlString(opts.llmBaseUrl ?? "https://api.openai.com/v1")}`,
      `env_key = ${tomlString(opts.credential ?? "OPENAI_API_KEY")}`,
      'wire_api = "responses"',
      "",
      // --- approvals (issue 19): the controller's MCP server, through the bottle's proxy.
      `[mcp_servers.${APPROVALS_MCP_NAME}]`,
      `url = ${tomlString(APPROVALS_MCP_URL)}`,
    ];
    fs.writeFileSync(path.join(codexHome, "config.toml"), `${lines.join("\n")}\n`);
    setup.files.push("codex-home/config.toml");
    setup.env["CODEX_HOME"] = codexHome;
    setup.readWrite.push(codexHome);
    // Codex writes sessions and logs in CODEX_HOME, but its rules and config stay as bottle wrote them.
    setup.protect.push(path.join(codexHome, "rules"), path.join(codexHome, "config.toml"));
  } else if (kind === "agentcli") {
    for (const r of rules) setup.args.push("--rules", r);
    // Straight to the model's provider through the proxy, which meters it and injects the key.
    if (opts.model) setup.args.push("--direct", "--model", opts.model);
  }
  return setup;
}
