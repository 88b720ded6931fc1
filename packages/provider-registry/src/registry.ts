import { didYouMean, suggest } from "@bottlekit/diagnostics";
import {
  type ProviderEntry,
  type RegistryConfig,
  splitModel,
  validateRegistryConfig,
  warningsOfValidated,
} from "./config.ts";
import { ProviderRegistryError } from "./errors.ts";
import { ModelCatalog } from "./models.ts";
import type { ModelOverrides } from "./overrides.ts";
import { allProviderNames, getProvider, listProviders } from "./providers.ts";
import type {
  ExplainStep,
  Explanation,
  ModelInfo,
  ProviderInfo,
  ResolvedAuth,
  ResolvedModel,
  ResolveStep,
  WireApi,
} from "./types.ts";

export interface RegistryOptions {
  /** User model overrides (see loadModelOverrides). */
  overrides?: ModelOverrides;
  /** Date whose prices apply (dated price changes). Default: now. */
  priceDate?: Date;
  /** Max cached resolutions; the oldest is evicted past it. Default 4096. */
  cacheSize?: number;
}

export interface ResolveOptions {
  /** Preferred wire API (the client's). Used when the provider speaks it; otherwise its default. */
  api?: WireApi;
}

/** A model as `listModels()` reports it. */
export interface ListedModel {
  /** What a client asks for: the configured name, or `provider/model` for catalog models. */
  readonly id: string;
  readonly provider: string;
  readonly model: string;
  readonly source: "config" | "catalog";
  readonly kind: "network" | "local-agent";
  readonly default: boolean;
  readonly wildcard: boolean;
  readonly info?: ModelInfo;
}

export interface Registry {
  /** Resolve a model string. Cached: O(1) for a repeated input. Throws ProviderRegistryError. */
  resolve(model: string, options?: ResolveOptions): ResolvedModel;
  /** Every step tried for `model`, and why the winner won. Never throws for an unknown model. */
  explain(model: string, options?: ResolveOptions): Explanation;
  /** Configured models first (in declaration order), then the built-in catalog. */
  listModels(options?: { include?: "all" | "configured" | "catalog" }): ListedModel[];
  /** Catalog facts (limits, price, provenance) for one provider's model. */
  modelInfo(provider: string, model: string): ModelInfo | undefined;
  /** The validated config. */
  readonly config: RegistryConfig;
  /** Warnings from config validation (deprecated keys, plain http, …). */
  readonly warnings: readonly string[];
  /** Name of the `default: true` entry, if any. */
  readonly defaultModel: string | undefined;
}

const EMPTY_CONFIG: RegistryConfig = Object.freeze({ providers: [], aliases: {} });

/**
 * Build a registry from a Plano-style config (`model_providers`, `model_aliases`). Throws
 * E_INVALID_CONFIG listing every `key.path: message` when the config is invalid. A config that
 * `validateRegistryConfig` or `checkRegistryConfig` returned (their `value`) is taken as is.
 */
export function createRegistry(config?: unknown, options: RegistryOptions = {}): Registry {
  let value = EMPTY_CONFIG;
  let warnings: readonly string[] = [];
  const validatedWarnings = warningsOfValidated(config);
  if (validatedWarnings !== undefined) {
    value = config as RegistryConfig;
    warnings = validatedWarnings;
  } else if (config !== undefined && config !== null) {
    const result = validateRegistryConfig(config);
    if (!result.value) {
      throw new ProviderRegistryError(
        "E_INVALID_CONFIG",
        `invalid provider config: ${result.errors.join("; ")}`,
        { details: result.errors, hint: result.errors[0] },
      );
    }
    value = result.value;
    warnings = result.warnings;
  }
  return new RegistryImpl(value, warnings, options);
}

interface Trace {
  steps: ExplainStep[];
}

class RegistryImpl implements Registry {
  readonly config: RegistryConfig;
  readonly warnings: readonly string[];
  readonly defaultModel: string | undefined;
  private readonly catalog: ModelCatalog;
  private readonly byName = new Map<string, ProviderEntry>();
  private readonly byModelKey = new Map<string, ProviderEntry>();
  private readonly byBareModel = new Map<string, ProviderEntry>();
  private readonly wildcards = new Map<string, ProviderEntry>();
  private readonly aliases: ReadonlyMap<string, string>;
  private readonly cache = new Map<string, ResolvedModel>();
  private readonly cacheSize: number;
  private candidates: readonly string[] | undefined;

  constructor(config: RegistryConfig, warnings: readonly string[], options: RegistryOptions) {
    this.config = config;
    this.warnings = Object.freeze([...warnings]);
    this.defaultModel = config.defaultName;
    this.catalog = new ModelCatalog({
      ...(options.overrides ? { overrides: options.overrides } : {}),
      ...(options.priceDate ? { priceDate: options.priceDate } : {}),
    });
    this.cacheSize = Math.max(1, options.cacheSize ?? 4096);
    for (const e of config.providers) {
      if (e.wildcard) {
        this.wildcards.set(e.provider, e);
        continue;
      }
      this.byName.set(e.name, e);
      this.byModelKey.set(`${e.provider}/${e.modelId}`, e);
      if (!this.byBareModel.has(e.modelId)) this.byBareModel.set(e.modelId, e);
    }
    this.aliases = new Map(Object.entries(config.aliases));
  }

  resolve(model: string, options?: ResolveOptions): ResolvedModel {
    const key = options?.api ? `${options.api}\u0000${model}` : model;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const result = this.run(model, options?.api, undefined, []);
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, result);
    return result;
  }

  explain(model: string, options?: ResolveOptions): Explanation {
    const trace: Trace = { steps: [] };
    try {
      const result = this.run(model, options?.api, trace, []);
      const winner = trace.steps.findLast((s) => s.matched);
      return Object.freeze({
        input: model,
        steps: trace.steps,
        result,
        summary: `resolved by ${result.via}: ${winner?.detail ?? ""}`.trim(),
      });
    } catch (err) {
      if (!(err instanceof ProviderRegistryError)) throw err;
      return Object.freeze({
        input: model,
        steps: trace.steps,
        summary: err.message,
        error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) },
      });
    }
  }

  modelInfo(provider: string, model: string): ModelInfo | undefined {
    return this.catalog.lookup(provider, model);
  }

  listModels(options: { include?: "all" | "configured" | "catalog" } = {}): ListedModel[] {
    const include = options.include ?? "all";
    const out: ListedModel[] = [];
    if (include !== "catalog") {
      for (const e of this.config.providers) {
        const info = e.wildcard ? undefined : this.catalog.lookup(e.provider, e.modelId);
        out.push(
          Object.freeze({
            id: e.name,
            provider: e.provider,
            model: e.modelId,
            source: "config",
            kind: e.interface.kind,
            default: e.default,
            wildcard: e.wildcard,
            ...(info ? { info } : {}),
          }),
        );
      }
    }
    if (include !== "configured") {
      for (const info of this.catalog.list()) {
        out.push(
          Object.freeze({
            id: `${info.provider}/${info.id}`,
            provider: info.provider,
            model: info.id,
            source: "catalog",
            kind: getProvider(info.provider)?.kind ?? "network",
            default: false,
            wildcard: false,
            info,
          }),
        );
      }
    }
    return out;
  }

  // ---- resolution ----

  private run(
    input: string,
    api: WireApi | undefined,
    trace: Trace | undefined,
    aliasChain: string[],
  ): ResolvedModel {
    if (typeof input !== "string" || input.trim() === "") {
      throw new ProviderRegistryError("E_INVALID_INPUT", "model must be a non-empty string", {
        hint: 'pass a model such as "openai/gpt-4o"',
      });
    }
    const note = (step: ResolveStep, matched: boolean, detail: string) => {
      trace?.steps.push(Object.freeze({ step, matched, detail }));
    };
    const split = splitModel(input);
    const prefixId = split
      ? (getProvider(split.prefix)?.id ?? split.prefix.toLowerCase())
      : undefined;

    // 1. configured name (or the configured model string, which the name defaults to)
    const named =
      this.byName.get(input) ??
      (split && prefixId ? this.byModelKey.get(`${prefixId}/${split.rest}`) : undefined);
    if (named) {
      note(
        "name",
        true,
        `matches model_providers[${named.index}] "${named.name}" (${named.model})`,
      );
      return this.build(input, named.interface, named.modelId, named, "name", api, aliasChain);
    }
    note(
      "name",
      false,
      this.config.providers.length
        ? "no configured name or model matches"
        : "no model_providers configured",
    );

    // 2. alias (chains allowed; cycles refused)
    const target = this.aliases.get(input);
    if (target !== undefined) {
      if (aliasChain.includes(input)) {
        throw new ProviderRegistryError(
          "E_ALIAS_CYCLE",
          `model alias cycle: ${[...aliasChain, input].join(" -> ")}`,
          { hint: "point one of these aliases at a configured model" },
        );
      }
      note("alias", true, `model_aliases.${input} -> ${target}`);
      return this.run(target, api, trace, [...aliasChain, input]);
    }
    note(
      "alias",
      false,
      this.aliases.size ? `no alias named "${input}"` : "no model_aliases configured",
    );

    // 3. provider/model with a built-in provider prefix (model part may contain "/")
    let deferred: ProviderEntry | undefined;
    if (split) {
      const provider = getProvider(split.prefix);
      if (split.rest === "") {
        throw new ProviderRegistryError("E_INVALID_INPUT", `"${input}" has an empty model part`, {
          hint: `write ${split.prefix}/<model>`,
        });
      }
      if (provider) {
        deferred = this.wildcards.get(provider.id);
        if (deferred) {
          note(
            "provider-model",
            false,
            `prefix "${split.prefix}" is ${provider.id}, but configured wildcard ${deferred.model} takes precedence over its defaults`,
          );
        } else {
          note(
            "provider-model",
            true,
            `prefix "${split.prefix}" is the built-in provider ${provider.id}${
              split.prefix !== provider.id ? " (case/alias normalized)" : ""
            }; model "${split.rest}"`,
          );
          return this.build(
            input,
            provider,
            split.rest,
            undefined,
            "provider-model",
            api,
            aliasChain,
          );
        }
      } else {
        note("provider-model", false, `"${split.prefix}" is not a built-in provider`);
      }
    } else {
      note("provider-model", false, "no provider/ prefix");
    }

    // 4. bare model: a configured model part, then the model family
    if (!split) {
      const bare = this.byBareModel.get(input);
      if (bare) {
        note(
          "family",
          true,
          `bare model matches configured model_providers[${bare.index}] ${bare.model}`,
        );
        return this.build(input, bare.interface, bare.modelId, bare, "family", api, aliasChain);
      }
      const family = familyOf(input);
      if (family) {
        const wc = this.wildcards.get(family.provider.id);
        note(
          "family",
          true,
          `"${input}" matches ${family.pattern} of ${family.provider.id}${wc ? `; settings from configured ${wc.model}` : ""}`,
        );
        return this.build(input, family.provider, input, wc, "family", api, aliasChain);
      }
      note("family", false, `"${input}" matches no configured model and no known model family`);
    } else {
      note("family", false, "not a bare model");
    }

    // 5. configured provider/* wildcard
    if (split && prefixId) {
      const wc = deferred ?? this.wildcards.get(prefixId);
      if (wc) {
        note(
          "wildcard",
          true,
          `configured wildcard ${wc.model} (model_providers[${wc.index}]) forwards "${split.rest}"`,
        );
        return this.build(input, wc.interface, split.rest, wc, "wildcard", api, aliasChain);
      }
      note("wildcard", false, `no ${split.prefix}/* wildcard configured`);
    } else {
      note("wildcard", false, "wildcards need a provider/ prefix");
    }

    throw this.unknown(input, split);
  }

  private unknown(
    input: string,
    split: { prefix: string; rest: string } | undefined,
  ): ProviderRegistryError {
    if (split && !getProvider(split.prefix)) {
      const near = suggest(split.prefix, allProviderNames(), 3);
      const suggestions = near.map((p) => `${getProvider(p)?.id ?? p}/${split.rest}`);
      const dedup = [...new Set(suggestions)];
      return new ProviderRegistryError(
        "E_UNKNOWN_PROVIDER",
        `unknown provider "${split.prefix}" in "${input}"${dedup.length ? `; ${didYouMean(dedup)}` : ""}`,
        {
          suggestions: dedup,
          hint: "use a built-in provider id, or configure the prefix with base_url and provider_interface",
        },
      );
    }
    const suggestions = suggest(input, this.suggestionCandidates(), 3);
    return new ProviderRegistryError(
      "E_UNKNOWN_MODEL",
      `unknown model "${input}"${suggestions.length ? `; ${didYouMean(suggestions)}` : ""}`,
      {
        suggestions,
        hint: "write provider/model (e.g. openai/gpt-4o), or configure it in model_providers",
      },
    );
  }

  /** Names worth suggesting, built once: configured names, aliases, catalog models. */
  private suggestionCandidates(): readonly string[] {
    if (this.candidates) return this.candidates;
    const out = new Set<string>([...this.byName.keys(), ...this.aliases.keys()]);
    for (const info of this.catalog.list()) {
      const p = getProvider(info.provider);
      // Bare ids only where a bare id resolves: the provider owns the model family.
      if (p?.families?.some((re) => re.test(info.id))) out.add(info.id);
      out.add(`${info.provider}/${info.id}`);
    }
    this.candidates = [...out];
    return this.candidates;
  }

  private build(
    input: string,
    provider: ProviderInfo,
    modelId: string,
    entry: ProviderEntry | undefined,
    via: ResolveStep,
    preferred: WireApi | undefined,
    aliasChain: readonly string[],
  ): ResolvedModel {
    const providerId = entry?.custom ? entry.provider : provider.id;
    const baseUrl = applyBaseUrl(provider, entry?.baseUrl);
    if (baseUrl === undefined && provider.baseUrlRequired) {
      throw new ProviderRegistryError(
        "E_BASE_URL_REQUIRED",
        `"${input}" resolves to ${provider.id}, which has no default base URL`,
        {
          hint: `configure it: model_providers: [{ model: "${provider.id}/${modelId}", base_url: "https://<resource>.openai.azure.com", access_key: "$${provider.apiKeyEnv[0] ?? "API_KEY"}" }]`,
        },
      );
    }
    const api = preferred && provider.apis.includes(preferred) ? preferred : provider.apis[0]!;
    const endpoint = provider.endpoints[api];
    const fill = (path: string) => path.replaceAll("{model}", encodeURIComponent(modelId));
    const url = baseUrl !== undefined && endpoint ? baseUrl + fill(endpoint.path) : undefined;
    const streamUrl =
      baseUrl !== undefined && endpoint
        ? baseUrl + fill(endpoint.streamPath ?? endpoint.path)
        : undefined;
    const style = endpoint?.auth ?? provider.auth;
    const keyEnv = entry?.accessKeyEnv
      ? [entry.accessKeyEnv, ...provider.apiKeyEnv.filter((k) => k !== entry.accessKeyEnv)]
      : entry?.custom
        ? []
        : [...provider.apiKeyEnv];
    const auth: ResolvedAuth = Object.freeze({
      ...style,
      keyEnv: Object.freeze(keyEnv),
      passthrough: entry?.passthroughAuth === true,
    });
    const info = this.catalog.lookup(providerId, modelId);
    const headers = Object.freeze({ ...(provider.headers ?? {}), ...(entry?.headers ?? {}) });
    return Object.freeze({
      input,
      provider: providerId,
      model: modelId,
      api,
      apis: provider.apis,
      baseUrl,
      url,
      streamUrl,
      auth,
      kind: provider.kind,
      headers,
      streamUsageOption: provider.streamUsageOption,
      ...(info?.price ? { price: info.price } : {}),
      ...(info && (info.limits.contextWindow || info.limits.maxOutput)
        ? { limits: info.limits }
        : {}),
      ...(entry ? { entry: entry.name } : {}),
      via,
      aliasChain: Object.freeze([...aliasChain]),
      ...(provider.localAgent ? { localAgent: provider.localAgent } : {}),
    });
  }
}

/**
 * A configured base URL replaces the default. When it has no path (`http://host:8000`), the
 * provider's default path prefix is appended (`/v1`, `/openai/v1`); a path in it is kept as is.
 */
export function applyBaseUrl(
  provider: ProviderInfo,
  configured: string | undefined,
): string | undefined {
  if (configured === undefined) return provider.baseUrl;
  const url = new URL(configured);
  if ((url.pathname === "" || url.pathname === "/") && provider.baseUrl) {
    const prefix = new URL(provider.baseUrl).pathname.replace(/\/+$/, "");
    return `${url.origin}${prefix}`;
  }
  return configured.replace(/\/+$/, "");
}

const FAMILY_TABLE: readonly { provider: ProviderInfo; re: RegExp }[] = listProviders().flatMap(
  (p) => (p.families ?? []).map((re) => ({ provider: p, re })),
);

/** The first-party provider whose model family matches a bare model id (`gpt-4o` → openai). */
export function familyOf(model: string): { provider: ProviderInfo; pattern: string } | undefined {
  const lower = model.toLowerCase();
  for (const { provider, re } of FAMILY_TABLE) {
    if (re.test(lower)) return { provider, pattern: re.source };
  }
  return undefined;
}
