import { readFileSync } from "node:fs";
import { lazyObject, once } from "@bottlekit/diagnostics";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ProviderRegistryError } from "./errors.ts";
import { getProvider } from "./providers.ts";
import type { ModelLimits, ModelPrice, Provenance } from "./types.ts";
import { formatIssues } from "./zod-issues.ts";

/** Built on first use, not at import (see config.ts): most processes never read an override file. */
const schemasOf = once(() => {
  const usdPerMillion = z.number().finite().nonnegative();
  const overrideEntrySchema = z.strictObject({
    context_window: z.number().int().positive().optional(),
    max_output: z.number().int().positive().optional(),
    /** USD per million input tokens (the unit vendors publish). */
    input: usdPerMillion.optional(),
    output: usdPerMillion.optional(),
    cache_read: usdPerMillion.optional(),
    cache_write: usdPerMillion.optional(),
  });
  const modelOverridesSchema = z.strictObject({
    /** Keyed by `provider/model` (`openai/gpt-4o`, `mycorp/llama-70b`). */
    models: z.record(
      z.string().regex(/^[^/\s]+\/\S+$/, "key must be provider/model"),
      overrideEntrySchema,
    ),
  });
  return { overrideEntrySchema, modelOverridesSchema };
});

/** Schema of the user's model override file (YAML or JSON). */
export const modelOverridesSchema = lazyObject(() => schemasOf().modelOverridesSchema);

export type ModelOverridesInput = z.input<ReturnType<typeof schemasOf>["modelOverridesSchema"]>;

export interface ModelOverride {
  readonly provider: string;
  readonly model: string;
  readonly price?: ModelPrice;
  readonly limits?: ModelLimits;
  readonly provenance: Provenance;
}

/** Validated model overrides. Keys match case-insensitively on the provider part. */
export class ModelOverrides {
  readonly entries: readonly ModelOverride[];
  private readonly byKey: Map<string, ModelOverride>;

  constructor(entries: readonly ModelOverride[]) {
    this.entries = Object.freeze([...entries]);
    this.byKey = new Map(entries.map((e) => [`${e.provider}/${e.model}`, e]));
  }

  get(provider: string, model: string): ModelOverride | undefined {
    return this.byKey.get(`${canonicalProvider(provider)}/${model}`);
  }
}

function canonicalProvider(p: string): string {
  return getProvider(p)?.id ?? p.toLowerCase();
}

/**
 * Validate override data. `source` names where it came from (a file path) and ends up in each
 * entry's provenance. Throws E_OVERRIDES listing every `key.path: message`.
 */
export function parseModelOverrides(input: unknown, source = "inline"): ModelOverrides {
  const { modelOverridesSchema, overrideEntrySchema } = schemasOf();
  const parsed = modelOverridesSchema.safeParse(input);
  if (!parsed.success) {
    const entryKeys = Object.keys(overrideEntrySchema.shape);
    const details = formatIssues(parsed.error.issues, (path) =>
      path.length === 0 ? ["models"] : path.length === 2 ? entryKeys : undefined,
    );
    throw new ProviderRegistryError(
      "E_OVERRIDES",
      `invalid model overrides in ${source}: ${details.join("; ")}`,
      {
        details,
        hint: "each entry is `provider/model: { context_window, max_output, input, output, cache_read, cache_write }` with prices in USD per million tokens",
      },
    );
  }
  const errors: string[] = [];
  const entries: ModelOverride[] = [];
  for (const [key, e] of Object.entries(parsed.data.models)) {
    const slash = key.indexOf("/");
    const provider = canonicalProvider(key.slice(0, slash));
    const model = key.slice(slash + 1);
    const provenance: Provenance = Object.freeze({ source: "override", version: source, key });
    const hasPrice = [e.input, e.output, e.cache_read, e.cache_write].some((v) => v !== undefined);
    if (hasPrice && (e.input === undefined || e.output === undefined)) {
      errors.push(`models.${key}: a price needs both input and output (USD per million tokens)`);
      continue;
    }
    const price: ModelPrice | undefined =
      e.input !== undefined && e.output !== undefined
        ? Object.freeze({
            currency: "USD",
            input: e.input / 1e6,
            output: e.output / 1e6,
            ...(e.cache_read !== undefined ? { cacheRead: e.cache_read / 1e6 } : {}),
            ...(e.cache_write !== undefined ? { cacheWrite: e.cache_write / 1e6 } : {}),
            provenance,
          })
        : undefined;
    const limits: ModelLimits | undefined =
      e.context_window !== undefined || e.max_output !== undefined
        ? Object.freeze({
            ...(e.context_window !== undefined ? { contextWindow: e.context_window } : {}),
            ...(e.max_output !== undefined ? { maxOutput: e.max_output } : {}),
            provenance,
          })
        : undefined;
    entries.push({
      provider,
      model,
      ...(price ? { price } : {}),
      ...(limits ? { limits } : {}),
      provenance,
    });
  }
  if (errors.length) {
    throw new ProviderRegistryError(
      "E_OVERRIDES",
      `invalid model overrides in ${source}: ${errors.join("; ")}`,
      {
        details: errors,
      },
    );
  }
  return new ModelOverrides(entries);
}

/** Read and validate a YAML or JSON override file. */
export function loadModelOverrides(path: string): ModelOverrides {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ProviderRegistryError("E_OVERRIDES", `cannot read model overrides file ${path}`, {
      cause,
      hint: "check the path, or leave the overrides option out",
    });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (cause) {
    const pos = (cause as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    const where = pos ? `${path}:${pos.line}:${pos.col}` : path;
    throw new ProviderRegistryError("E_OVERRIDES", `${where}: not valid YAML or JSON`, { cause });
  }
  return parseModelOverrides(data ?? {}, path);
}
