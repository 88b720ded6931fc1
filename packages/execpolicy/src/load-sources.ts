import { type LoadResult, loadSourcesWith, type PolicySource } from "./load.ts";
import { normalizeNativePolicy } from "./native-format.ts";

/** Loads policy sources (Codex `.rules` or native YAML) in order, with per-file isolation. Never throws for a bad file. */
export function loadPolicySources(sources: readonly PolicySource[]): LoadResult {
  return loadSourcesWith(sources, normalizeNativePolicy);
}
