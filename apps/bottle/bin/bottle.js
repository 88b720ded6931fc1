#!/usr/bin/env node
// CommonJS (bin/package.json): `bottle run` then starts without Node's ESM loader (about 10 ms of
// every run); every other command still loads the ESM CLI, through import().
"use strict";

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

/** A performance mark with this process's CPU time so far (ms) as its detail. */
function mark(name) {
  const cpu = process.cpuUsage();
  performance.mark(name, { detail: (cpu.user + cpu.system) / 1000 });
}

async function main() {
  if (commandOf(argv) === "run") {
    // `bottle run`: two bundled files compiled with V8's code cache (src/run/code-cache.ts); the
    // first loads the second (the controller) once the sandbox is spawned (tsup.config.ts).
    mark("bottle-bin:start");
    const path = require("node:path");
    const loader = require("../dist/code-cache.cjs");
    const bundle = loader.requireBundle(
      path.join(__dirname, "..", "dist", "bottle-run.cjs"),
      loader.codeCacheDir(process.env),
    );
    mark("bottle-bin:loaded");
    // `… | head` closes the pipe early: end quietly instead of crashing with EPIPE.
    bundle.exports.guardPipes();
    process.exitCode = await bundle.exports.run(argv);
    // Both files of the run (the controller's is loaded once the sandbox is spawned).
    loader.saveAll();
    // bench/startup.ts: where the start-up went (performance marks, times from process start).
    const trace = process.env.BOTTLEKIT_STARTUP_TRACE;
    if (trace) {
      mark("bottle-bin:end");
      const marks = performance.getEntriesByType("mark").map((m) => ({
        name: m.name,
        at: m.startTime,
        cpu: m.detail,
      }));
      require("node:fs").writeFileSync(trace, JSON.stringify({ cache: bundle.cache, marks }));
    }
    // The run is over and everything it opened is closed or awaited: do not wait for stray timers
    // or keep-alive sockets of the libraries (stdout and stderr are synchronous on Linux).
    process.exit();
  } else {
    // Every other command: the ESM build, each command's modules imported when it runs.
    const { guardPipes } = await import("@bottlekit/diagnostics");
    guardPipes();
    const { run } = await import("../dist/cli.js");
    process.exitCode = await run(argv);
  }
}

main().catch((error) => {
  // As an uncaught error would: the stack and exit 1 at once (the CLI renders its own errors).
  console.error(error);
  process.exit(1);
});
