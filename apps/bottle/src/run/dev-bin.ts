// The CLI from source, for tests that need a real `bottle` process (signals, the agent's stdio).
import { run } from "../cli.ts";

process.exitCode = await run(process.argv.slice(2));
