#!/usr/bin/env node
// stdio MCP → the bottle's approvals server, through HTTPS_PROXY (see @bottlekit/approvals).
import { runStdioShim } from "../dist/index.js";

try {
  await runStdioShim({ stdin: process.stdin, stdout: process.stdout, env: process.env });
} catch (error) {
  process.stderr.write(
    `bottlekit-mcp-stdio: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
}
