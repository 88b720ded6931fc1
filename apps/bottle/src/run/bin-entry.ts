/**
 * The entry of dist/bottle-run.cjs, the bundle `bottle run` loads first (see tsup.config.ts and
 * bin/bottle.js): the CLI, the EPIPE guard the bin installs before it runs, and the libraries
 * this bundle shares with the controller's bundle (dist/bottle-controller.cjs, loaded once the
 * sandbox is spawned), so both use one instance of each.
 */
export { guardPipes } from "@bottlekit/diagnostics";
export { run } from "../cli.ts";

/**
 * The workspace libraries the controller's bundle takes from this one, by specifier (the build
 * makes them external there and fails when it reaches one that is not listed here). Each loads
 * on first use, as an `import()` of it would.
 */
export const shared: Record<string, unknown> = {
  get "@bottlekit/budget-store"() {
    return require("@bottlekit/budget-store");
  },
  get "@bottlekit/diagnostics"() {
    return require("@bottlekit/diagnostics");
  },
  get "@bottlekit/egress-dlp"() {
    return require("@bottlekit/egress-dlp");
  },
  get "@bottlekit/manifest"() {
    return require("@bottlekit/manifest");
  },
  get "@bottlekit/provider-registry"() {
    return require("@bottlekit/provider-registry");
  },
  get "@bottlekit/sandbox"() {
    return require("@bottlekit/sandbox");
  },
  // npm packages of both (the build resolves each from a workspace library that depends on it).
  get commander() {
    return require("commander");
  },
  get yaml() {
    return require("yaml");
  },
  get zod() {
    return require("zod");
  },
};
