import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { APPROVALS_URL } from "@bottlekit/approvals";
import { afterEach, describe, expect, it } from "vitest";
import { APPROVALS_MCP_URL, prepareAgent } from "../run/agents.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "bk-mcpcfg-"));
  dirs.push(d);
  return d;
};

describe("bottle run configures the approvals MCP server", () => {
  it("uses the approvals library's reserved URL", () => {
    expect(APPROVALS_MCP_URL).toBe(APPROVALS_URL);
  });

  it("Claude Code: --mcp-config with the HTTP server, ended by the next flag", () => {
    const setup = prepareAgent("claude", tmp(), { rules: [], node: process.execPath });
    const at = setup.args.indexOf("--mcp-config");
    expect(at).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(setup.args[at + 1] as string)).toEqual({
      mcpServers: { bottlekit: { type: "http", url: APPROVALS_URL } },
    });
    // a variadic option: what follows must be a flag, never the user's prompt
    expect(setup.args[at + 2]?.startsWith("--")).toBe(true);
  });

  it("Codex: an [mcp_servers.bottlekit] table with the URL", () => {
    const dir = tmp();
    prepareAgent("codex", dir, { rules: [], node: process.execPath });
    const toml = fs.readFileSync(path.join(dir, "codex-home", "config.toml"), "utf8");
    expect(toml).toContain(`[mcp_servers.bottlekit]\nurl = "${APPROVALS_URL}"\n`);
  });
});
