/**
 * The entry of dist/bottle-zod.cjs, a bundle file of its own for zod (see tsup.config.ts): zod is
 * some 450 KB of the code `bottle run` would otherwise read and decode on every run, and a run
 * reads it only to validate what it was given (a manifest, a gateway config, approvals.yml): a
 * run with none of these, or the embedded controller's zero-config start, never loads it.
 * dist/bottle-run.cjs loads this file at the first read of one of zod's exports (its deferred
 * stub), and gives it to the other files as its shared `zod`.
 */
// zod's main entry as the libraries import it (tsup.config.ts resolves it so; this app does not
// depend on zod itself: the libraries that use it do).
export const zod: unknown = require("zod");
