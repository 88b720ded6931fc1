#!/usr/bin/env node
import { createRequire } from "node:module";
import { guardPipes } from "@bottlekit/diagnostics";

// `… | head` closes the pipe early: end quietly instead of crashing with EPIPE.
guardPipes();
const argv = process.argv.slice(2);

/** The command word, after the global options (`--home <dir>`, `--cwd <dir>`). */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--home" || a === "--cwd") i++;
    else if (!a.startsWith("-")) return a;
    else if (!a.startsWith("--home=") && !a.startsWith("--cwd=")) return undefined;
  }
  return undefined;
}

if (commandOf(argv) === "run") {
  // `bottle run`: one bundled file compiled with V8's code cache (see src/run/code-cache.ts).
  const require = createRequire(import.meta.url);
  const loader = require("../dist/code-cache.cjs");
  const bundle = loader.requireBundle(
    new URL("../dist/bottle-run.cjs", import.meta.url).pathname,
    loader.codeCacheDir(process.env),
  );
  process.exitCode = await bundle.exports.run(argv);
  bundle.save();
} else {
  // Every other command: the ESM build, each command's modules imported when it runs.
  const { run } = await import("../dist/cli.js");
  process.exitCode = await run(argv);
}
