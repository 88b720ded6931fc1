import { lookupLocalAgent } from "./registry.ts";

/** Which field of a provider entry identified it as a local agent. */
export type MatchedField = "provider_interface" | "provider" | "model" | "name";

/** One `model_providers` entry that the gateway would serve by spawning a local agent CLI. */
export interface LocalAgentEntry {
  /** Canonical local-agent interface id from the provider registry, e.g. `claude-cli`. */
  interface: string;
  /** Display name: the entry's `name`, else its `model`, else the interface. */
  name: string;
  /** The entry's `model`, when it is a string. */
  model: string | undefined;
  /** Zero-based position of the entry in the provider list. */
  index: number;
  /** The field that matched (first of provider_interface, provider, model, name). */
  matchedOn: MatchedField;
  /** The list the entry came from. */
  source: "model_providers" | "llm_providers";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return undefined;
}

/** The interface named by a `<interface>/...` prefix, if any. */
function prefixOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  const slash = trimmed.indexOf("/");
  if (slash <= 0) return undefined;
  return trimmed.slice(0, slash);
}

/**
 * The provider list of a config: `model_providers` when it is a list, otherwise the legacy
 * `llm_providers` when that is a list, otherwise empty.
 */
function providerList(config: unknown): {
  list: readonly unknown[];
  source: LocalAgentEntry["source"];
} {
  if (!isRecord(config)) return { list: [], source: "model_providers" };
  const modern = config["model_providers"];
  if (Array.isArray(modern)) return { list: modern, source: "model_providers" };
  const legacy = config["llm_providers"];
  if (Array.isArray(legacy)) return { list: legacy, source: "llm_providers" };
  return { list: [], source: "model_providers" };
}

/**
 * Reports every provider entry that is a local-agent interface according to
 * `@bottlekit/provider-registry`, in declaration order.
 *
 * An entry matches when its `provider_interface`, its legacy `provider`, or the `<interface>/`
 * prefix of its `model` or `name` names a local-agent interface (any case, aliases resolved).
 * The fields are checked in that order and the first match names the interface. A null or
 * non-object config, a provider list that is not a list, and entries that are not objects are
 * tolerated and yield nothing. Linear in the number of entries.
 */
export function detectLocalAgentProviders(config: unknown): LocalAgentEntry[] {
  const { list, source } = providerList(config);
  const found: LocalAgentEntry[] = [];
  list.forEach((entry, index) => {
    if (!isRecord(entry)) return;
    const model = asString(entry["model"]);
    const name = asString(entry["name"]);
    const candidates: [MatchedField, string | undefined][] = [
      ["provider_interface", asString(entry["provider_interface"])],
      ["provider", asString(entry["provider"])],
      ["model", prefixOf(model)],
      ["name", prefixOf(name)],
    ];
    for (const [field, candidate] of candidates) {
      if (candidate === undefined) continue;
      const spec = lookupLocalAgent(candidate);
      if (spec === undefined) continue;
      const displayName =
        name !== undefined && name.trim() !== ""
          ? name.trim()
          : model !== undefined && model.trim() !== ""
            ? model.trim()
            : spec.id;
      found.push({
        interface: spec.id,
        name: displayName,
        model: model?.trim(),
        index,
        matchedOn: field,
        source,
      });
      return;
    }
  });
  return found;
}

/** Distinct interfaces of `entries`, sorted. */
export function interfacesOf(entries: readonly LocalAgentEntry[]): string[] {
  return [...new Set(entries.map((e) => e.interface))].sort();
}
