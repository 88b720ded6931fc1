#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// One CLI run parses a few scripts: baseline-compiled wasm (the bash grammar) starts far faster
// than waiting for optimized code. Set before anything compiles wasm; the library never does this.
setFlagsFromString("--liftoff-only");
const { run } = await import("../dist/cli.js");
process.exitCode = await run(process.argv.slice(2));
