#!/usr/bin/env node
"use strict";
const { setFlagsFromString } = require("node:v8");
const { existsSync } = require("node:fs");
const { join } = require("node:path");

// Set before anything compiles wasm; the library never does this. A CLI run parses a few short
// scripts, so the bash grammar should run as baseline-compiled wasm, never wait for optimized code:
// - Node 20 honours --liftoff-only set at runtime;
// - Node 22+ ignores it, and would optimize the grammar's lexer after a script of a few dozen
//   characters, a ~400 ms background compile that exit then waits for. An unreachable tier-up
//   budget prevents that on every version.
setFlagsFromString("--liftoff-only");
setFlagsFromString("--wasm-tiering-budget=2000000000");

const dist = join(__dirname, "..", "dist");
const cliFile = join(dist, "cli.cjs");
const loaderFile = join(dist, "code-cache.cjs");
if (!existsSync(cliFile) || !existsSync(loaderFile)) {
  process.stderr.write(
    `execpolicy: ${cliFile} is missing: this checkout is not built.\n` +
      "hint: run `pnpm --filter @bottlekit/execpolicy build` first\n",
  );
  process.exit(1);
}
const loader = require(loaderFile);
// The CLI bundle, compiled with V8's code cache from the execpolicy cache directory
// ($BOTTLEKIT_EXECPOLICY_CACHE_DIR, `off` disables it).
const cli = loader.requireWithCodeCache(cliFile, loader.cacheDirFromEnv(process.env));
cli.exports.run(process.argv.slice(2)).then(async (code) => {
  process.exitCode = code;
  await cli.save(cli.exports.cliFeatures());
});
