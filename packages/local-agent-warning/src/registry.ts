// The one place this package talks to @bottlekit/provider-registry. Whether a name is a
// local-agent interface, and what its canonical id, binary and permission mode are, is decided
// there and nowhere else (case-insensitive, aliases resolved).
import { getProvider, isLocalAgentInterface } from "@bottlekit/provider-registry";

/** What the registry says about one local-agent interface. */
export interface LocalAgentSpec {
  /** Canonical interface id, e.g. `claude-cli`. */
  id: string;
  /** The binary the gateway spawns (a bare name looked up on PATH, or a path); null if unknown. */
  binary: string | null;
  /** The permission mode the agent runs with unless overridden; `unknown` if the registry has none. */
  defaultPermissionMode: string;
  /** Env var that overrides the binary (e.g. `CLAUDE_CLI_BIN`), when the registry names one. */
  binaryEnv: string | undefined;
  /** Which credentials the agent uses (names and locations, never values). */
  credentials: string | undefined;
}

/**
 * Looks `name` up in the provider registry. Returns the spec when it names a local-agent
 * interface (by id or alias, any case, surrounding whitespace ignored), else undefined.
 * Fails closed: a name the registry calls a local agent is reported even if its descriptor is
 * incomplete.
 */
export function lookupLocalAgent(name: string): LocalAgentSpec | undefined {
  const trimmed = name.trim();
  if (trimmed === "") return undefined;
  if (!isLocalAgentInterface(trimmed)) return undefined;
  const info = getProvider(trimmed);
  return {
    id: (info?.id ?? trimmed).toLowerCase(),
    binary: info?.localAgent?.binary ?? null,
    defaultPermissionMode: info?.localAgent?.defaultPermissionMode ?? "unknown",
    binaryEnv: info?.localAgent?.binaryEnv,
    credentials: info?.localAgent?.credentials,
  };
}

/** The canonical id for an interface name: the registry id when known, else the lowercased name. */
export function canonicalInterface(name: string): string {
  const trimmed = name.trim();
  const info = trimmed === "" ? undefined : getProvider(trimmed);
  return (info?.id ?? trimmed).toLowerCase();
}
