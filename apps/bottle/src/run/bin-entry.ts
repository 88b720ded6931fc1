/**
 * The entry of dist/bottle-run.cjs, the bundle `bottle run` loads (see tsup.config.ts and
 * bin/bottle.js): the CLI, and the EPIPE guard the bin installs before it runs.
 */
export { guardPipes } from "@bottlekit/diagnostics";
export { run } from "../cli.ts";
