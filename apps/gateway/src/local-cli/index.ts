// Local-agent providers served by spawning the operator's CLI: `claude-cli/*` through a bridge
// that speaks Anthropic Messages on loopback, `codex-cli/*` through one that speaks OpenAI
// Responses (see bridge.ts). The gateway's router, translation, metering and budgets treat each
// as any upstream.
import { detectLocalAgentProviders } from "@bottlekit/local-agent-warning";
import {
  BRIDGE_HEADER,
  type BridgedInterface,
  type LocalCliBridge,
  type LocalCliBridgeOptions,
  startBridge,
} from "./bridge.ts";

export type {
  BridgedInterface,
  BridgeLogEvent,
  LocalCliBridge,
  LocalCliBridgeOptions,
} from "./bridge.ts";
export { startBridge, startClaudeBridge } from "./bridge.ts";

export interface LocalCli {
  /** The registry input with each bridged entry pointed at its bridge. */
  registryInput: Record<string, unknown>;
  close(): Promise<void>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Where each bridged interface's base URL points (the registry appends its API path). */
const BASE_PATH: Record<BridgedInterface, string> = { "claude-cli": "", "codex-cli": "/v1" };

/**
 * Starts a bridge per interface (`claude-cli`, `codex-cli`) that the config has entries for
 * without a `base_url` of their own (an entry with one names an external bridge, which is called
 * like any upstream), and points those entries at it. Nothing starts, and the input is returned
 * as is, otherwise.
 */
export async function startLocalCli(
  registryInput: Record<string, unknown>,
  options: LocalCliBridgeOptions,
): Promise<LocalCli> {
  const list = registryInput["model_providers"];
  if (!Array.isArray(list)) return { registryInput, close: async () => {} };
  const byIndex = new Map<number, BridgedInterface>();
  for (const e of detectLocalAgentProviders({ model_providers: list })) {
    const entry = list[e.index];
    if ((e.interface === "claude-cli" || e.interface === "codex-cli") && isRecord(entry))
      if (entry["base_url"] === undefined) byIndex.set(e.index, e.interface);
  }
  if (byIndex.size === 0) return { registryInput, close: async () => {} };
  const bridges = new Map<BridgedInterface, LocalCliBridge>();
  try {
    for (const iface of new Set(byIndex.values()))
      bridges.set(iface, await startBridge(iface, options));
  } catch (error) {
    for (const b of bridges.values()) await b.close();
    throw error;
  }
  const providers = list.map((entry, i) => {
    const iface = byIndex.get(i);
    const bridge = iface === undefined ? undefined : bridges.get(iface);
    if (iface === undefined || bridge === undefined || !isRecord(entry)) return entry;
    const headers = isRecord(entry["headers"]) ? entry["headers"] : {};
    return {
      ...entry,
      base_url: `${bridge.url}${BASE_PATH[iface]}`,
      headers: { ...headers, [BRIDGE_HEADER]: bridge.secret },
    };
  });
  return {
    registryInput: { ...registryInput, model_providers: providers },
    async close() {
      for (const b of bridges.values()) await b.close();
    },
  };
}
