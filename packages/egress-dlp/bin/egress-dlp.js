#!/usr/bin/env node
import { run } from "../dist/cli.js";

// A closed pipe (`egress-dlp scan --help | head`) is not an error.
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
process.exitCode = await run(process.argv.slice(2));
