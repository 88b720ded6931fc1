#!/usr/bin/env node
import { guardPipes } from "@bottlekit/diagnostics";
import { run } from "../dist/cli.js";

// A closed pipe (`egress-dlp scan a b | head`) ends the run quietly, never with a stack.
guardPipes();
process.exitCode = await run(process.argv.slice(2));
