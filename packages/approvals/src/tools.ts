import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";

/**
 * The agent-facing MCP tools. `ToolHandlers` is what the controller implements for one caller
 * (the proxy session the request came through); the server built here only maps MCP calls onto
 * it, so a bottle can neither name another session nor decide anything.
 */

export { TOOL_NAMES } from "./tool-names.ts";

export interface ToolHandlers {
  listRoutes(): Promise<unknown>;
  listProviders(): Promise<unknown>;
  proposeRouteChange(args: {
    op: "add" | "widen" | "remove";
    route: Record<string, unknown>;
    justification: string;
  }): Promise<unknown>;
  requestProvider(args: {
    provider: string;
    host: string;
    justification: string;
  }): Promise<unknown>;
  requestBudget(args: {
    provider: string;
    tokens: number;
    justification: string;
  }): Promise<unknown>;
  checkCommand(args: { script: string }): Promise<unknown>;
  proposalStatus(args: { id: string; wait_seconds?: number | undefined }): Promise<unknown>;
}

type Result = { content: { type: "text"; text: string }[]; isError?: boolean };

async function answer(work: () => Promise<unknown>): Promise<Result> {
  try {
    const value = await work();
    return { content: [{ type: "text", text: JSON.stringify(value, null, 2) }] };
  } catch (error) {
    const e = error as { message?: unknown; hint?: unknown };
    const text = typeof e?.message === "string" ? e.message : "the request failed";
    const hint = typeof e?.hint === "string" ? `\n${e.hint}` : "";
    return { content: [{ type: "text", text: `${text}${hint}` }], isError: true };
  }
}

const justification = z
  .string()
  .min(1)
  .max(2000)
  .describe("Why the task needs this, in one or two sentences. The operator reads it.");

/** One MCP server for one caller (stateless: built per HTTP request). */
export function buildMcpServer(h: ToolHandlers): McpServer {
  const server = new McpServer({ name: "bottlekit-approvals", version: "0.0.0" });
  server.registerTool(
    "list_routes",
    {
      description:
        "The egress routes in force for this bottle: host, port, methods, paths, DLP action and which credential is bound (names only, never values).",
    },
    () => answer(() => h.listRoutes()),
  );
  server.registerTool(
    "list_providers",
    {
      description:
        "Host-managed credentials this bottle may request (request_provider): name, the hosts each is bound to, and the placeholder to send instead of a value. Attached ones are marked.",
    },
    () => answer(() => h.listProviders()),
  );
  server.registerTool(
    "propose_route_change",
    {
      description:
        "Ask the operator to add, widen or remove an egress route. `route` uses the bottle manifest's route schema: {host, port?, matches?: [{methods?, paths?: [{type: prefix|exact|regex, value}], headers?}], dlp?}. For remove, {host, port?} is enough. Returns a proposal id; poll proposal_status.",
      inputSchema: {
        op: z.enum(["add", "widen", "remove"]),
        route: z.record(z.string(), z.unknown()),
        justification,
      },
    },
    (args) => answer(() => h.proposeRouteChange(args)),
  );
  server.registerTool(
    "request_provider",
    {
      description:
        "Ask the operator to attach a host-managed credential (see list_providers) to this bottle for one host it is bound to.",
      inputSchema: {
        provider: z.string().min(1).max(128),
        host: z.string().min(1).max(253),
        justification,
      },
    },
    (args) => answer(() => h.requestProvider(args)),
  );
  server.registerTool(
    "request_budget",
    {
      description:
        "Ask the operator to raise this bottle's token budget for a provider (e.g. anthropic) to `tokens`.",
      inputSchema: {
        provider: z.string().min(1).max(64),
        tokens: z.number().int().positive(),
        justification,
      },
    },
    (args) => answer(() => h.requestBudget(args)),
  );
  server.registerTool(
    "check_command",
    {
      description:
        "What this bottle's exec policy decides for a shell script (every command in it), with the reason. Nothing is run.",
      inputSchema: { script: z.string().min(1).max(65536) },
    },
    (args) => answer(() => h.checkCommand(args)),
  );
  server.registerTool(
    "proposal_status",
    {
      description:
        "Status of one of this bottle's proposals. With wait_seconds (at most 60), waits for a decision. `in_force` is true only once the change is active in the proxy.",
      inputSchema: {
        id: z.string().min(1).max(64),
        wait_seconds: z.number().min(0).max(60).optional(),
      },
    },
    (args) => answer(() => h.proposalStatus(args)),
  );
  return server;
}
