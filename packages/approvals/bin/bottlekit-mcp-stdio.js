#!/usr/bin/env node
// stdio MCP → the bottle's approvals server, through HTTPS_PROXY (see @bottlekit/approvals).
import { createRequire } from "node:module";

const arg = process.argv[2];
if (arg === "--version" || arg === "-V") {
  process.stdout.write(`${createRequire(import.meta.url)("../package.json").version}\n`);
} else if (arg === "--help" || arg === "-h") {
  process.stdout.write(
    "Usage: bottlekit-mcp-stdio\n\nInside a bottle: reads MCP JSON-RPC lines on stdin, forwards each to the approvals server\n(https://policy.bottlekit.internal/mcp) through HTTPS_PROXY, trusting NODE_EXTRA_CA_CERTS,\nand writes the answers to stdout.\n\nExit codes:\n  0    ok\n  1    failure (no HTTPS_PROXY, unreadable CA file)\n  2    usage error\n",
  );
} else if (arg !== undefined) {
  process.stderr.write(
    `bottlekit-mcp-stdio: unknown argument ${JSON.stringify(arg)}\nRun 'bottlekit-mcp-stdio --help'.\n`,
  );
  process.exitCode = 2;
} else {
  const { runStdioShim } = await import("../dist/index.js");
  try {
    await runStdioShim({ stdin: process.stdin, stdout: process.stdout, env: process.env });
  } catch (error) {
    process.stderr.write(
      `bottlekit-mcp-stdio: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
