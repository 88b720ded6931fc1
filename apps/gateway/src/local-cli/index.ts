// Local-agent providers served by spawning the operator's CLI: `claude-cli/*` through a bridge
// that speaks Anthropic Messages on loopback (see bridge.ts). The gateway's router, translation,
// metering and budgets treat it as any upstream.
import { detectLocalAgentProviders } from "@bottlekit/local-agent-warning";
import { BRIDGE_HEADER, type LocalCliBridgeOptions, startClaudeBridge } from "./bridge.ts";

export type { BridgeLogEvent, LocalCliBridge, LocalCliBridgeOptions } from "./bridge.ts";
export { startClaudeBridge } from "./bridge.ts";

export interface LocalCli {
  /** The registry input with each bridged entry pointed at its bridge. */
  registryInput: Record<string, unknown>;
  close(): Promise<void>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Starts a bridge when the config has `claude-cli` entries without a `base_url` of their own (an
 * entry with one names an external bridge, which is called like any upstream), and points those
 * entries at it. Nothing starts, and the input is returned as is, otherwise.
 */
export async function startLocalCli(
  registryInput: Record<string, unknown>,
  options: LocalCliBridgeOptions,
): Promise<LocalCli> {
  const list = registryInput["model_providers"];
  if (!Array.isArray(list)) return { registryInput, close: async () => {} };
  const bridged = new Set(
    detectLocalAgentProviders({ model_providers: list })
      .filter((e) => e.interface === "claude-cli")
      .map((e) => e.index)
      .filter((i) => isRecord(list[i]) && list[i]["base_url"] === undefined),
  );
  if (bridged.size === 0) return { registryInput, close: async () => {} };
  const bridge = await startClaudeBridge(options);
  const providers = list.map((entry, i) => {
    if (!bridged.has(i) || !isRecord(entry)) return entry;
    const headers = isRecord(entry["headers"]) ? entry["headers"] : {};
    return {
      ...entry,
      base_url: bridge.url,
      headers: { ...headers, [BRIDGE_HEADER]: bridge.secret },
    };
  });
  return {
    registryInput: { ...registryInput, model_providers: providers },
    close: () => bridge.close(),
  };
}
