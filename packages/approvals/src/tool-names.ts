/**
 * The agent-facing MCP tools by name: its own module, so that importing the package (and listing
 * the tools) does not load the MCP SDK, which the service loads with the first request it serves.
 */
export const TOOL_NAMES = [
  "list_routes",
  "list_providers",
  "propose_route_change",
  "request_provider",
  "request_budget",
  "check_command",
  "proposal_status",
] as const;
