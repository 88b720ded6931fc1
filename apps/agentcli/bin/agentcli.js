#!/usr/bin/env node
import { guardPipes } from "@bottlekit/diagnostics";
import { run } from "../dist/cli.js";

// `… | head` closes the pipe early: end quietly instead of crashing with EPIPE
// (tool process groups still running are killed by agentcli's exit handler).
guardPipes();
process.exitCode = await run(process.argv.slice(2));
