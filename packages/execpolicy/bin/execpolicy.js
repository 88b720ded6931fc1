#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// One CLI run parses a few scripts: baseline-compiled wasm (the bash grammar) starts far faster
// than waiting for optimized code. Set before anything compiles wasm; the library never does this.
setFlagsFromString("--liftoff-only");
const cliUrl = new URL("../dist/cli.js", import.meta.url);
let cli;
try {
  cli = await import(cliUrl.href);
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes(cliUrl.pathname))
    throw error;
  process.stderr.write(
    `execpolicy: ${cliUrl.pathname} is missing: this checkout is not built.\n` +
      "hint: run `pnpm --filter @bottlekit/execpolicy build` first\n",
  );
  process.exit(1);
}
process.exitCode = await cli.run(process.argv.slice(2));
