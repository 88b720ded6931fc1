import {
  getProvider,
  type ModelPrice,
  type ResolvedModel,
  type WireApi,
} from "@bottlekit/provider-registry";
import type { ClientApi } from "./apis.ts";

/** The part of provider-registry's registry the gateway needs (structural, to keep the seam small). */
export interface ModelResolver {
  resolve(model: string, options?: { api?: WireApi }): ResolvedModel;
}

/** Where one (client API, model) pair goes. Built once per pair and cached. */
export interface UpstreamTarget {
  /** Canonical provider id, the budget scope's provider. */
  provider: string;
  /** Upstream model id sent to the provider. */
  model: string;
  /** The client's model string; the body is rewritten only when it differs from `model`. */
  clientModel: string;
  /** The API the upstream is called in: the client's own, or the provider's native one when translated. */
  api: ClientApi;
  /**
   * The provider does not speak the client's API: the request, response and errors go through
   * the translation stage (`translate-stage.ts`). False for every same-API call.
   */
  translated: boolean;
  /** `http://host:port`: the key of the connection pool. */
  origin: string;
  /** Path (with query) on the origin. May carry a query-style credential: never log it. */
  path: string;
  /** Path without the query: safe to log, used to match egress routes. */
  pathname: string;
  /** Static headers sent upstream: provider headers plus the injected credential. */
  headers: Readonly<Record<string, string>>;
  /** Forward the client's credential instead of injecting one (`passthrough_auth`). */
  passthrough: boolean;
  /** Header the provider reads its credential from (`authorization`, `x-api-key`, …). */
  authHeader: string | undefined;
  /** OpenAI chat streams: usage must be asked for with `stream_options.include_usage`. */
  streamUsageOption: boolean;
  maxOutput: number | undefined;
  price: ModelPrice | undefined;
  kind: "network" | "local-agent";
}

export type RouteResult =
  | { ok: true; target: UpstreamTarget }
  | {
      ok: false;
      status: number;
      type: "not_found_error" | "invalid_request_error";
      message: string;
    };

const DEFAULT_PATH: Record<ClientApi, string> = {
  "openai-chat": "/chat/completions",
  "openai-responses": "/responses",
  "anthropic-messages": "/messages",
};

/**
 * The native API a translated call uses, in order of preference: Anthropic Messages first (its
 * stream carries usage without being asked and has typed content blocks, so the least is lost),
 * then OpenAI Chat Completions (the widest spoken), then OpenAI Responses.
 */
export const UPSTREAM_API_PREFERENCE: readonly ClientApi[] = [
  "anthropic-messages",
  "openai-chat",
  "openai-responses",
];

/** The API a provider speaking `apis` is called in for a client speaking `client`. */
export function upstreamApiFor(client: ClientApi, apis: readonly string[]): ClientApi | undefined {
  if (apis.includes(client)) return client;
  return UPSTREAM_API_PREFERENCE.find((a) => apis.includes(a));
}

/** Reads an API key from the environment: the first env var in `names` that is set and non-empty. */
export function keyFromEnv(
  names: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { name: string; value: string } | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.length > 0) return { name: n, value: v };
  }
  return undefined;
}

/**
 * Routes (client API, model) to an upstream through provider-registry: to the provider's endpoint
 * for the client's own API when it speaks it (passthrough), else to its native API with
 * `translated` set (see `UPSTREAM_API_PREFERENCE`). Results are cached, so the hot path costs one
 * Map lookup after the first call for a model. The cache is bounded (cleared when it grows past
 * `maxEntries`) so arbitrary client model strings cannot grow memory without bound.
 */
export class Router {
  private readonly cache = new Map<string, RouteResult>();
  constructor(
    private readonly resolver: ModelResolver,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly maxEntries = 4096,
  ) {}

  route(api: ClientApi, model: string): RouteResult {
    const key = `${api}\u0001${model}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const result = this.build(api, model);
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(key, result);
    return result;
  }

  private build(api: ClientApi, model: string): RouteResult {
    let resolved: ResolvedModel;
    try {
      resolved = this.resolver.resolve(model, { api: api as WireApi });
    } catch (error) {
      const hint = error instanceof Error && "hint" in error ? ` ${String(error.hint ?? "")}` : "";
      const msg = error instanceof Error ? error.message : String(error);
      return {
        ok: false,
        status: 404,
        type: "not_found_error",
        message: `model "${model}" is not routable: ${msg}${hint}`.trim(),
      };
    }
    // A provider that does not speak the client's API is called in its native one, translated.
    const upstreamApi = upstreamApiFor(api, resolved.apis);
    if (upstreamApi === undefined) {
      return {
        ok: false,
        status: 400,
        type: "invalid_request_error",
        message: `model "${model}" resolves to provider "${resolved.provider}", which speaks ${resolved.apis.join(", ") || "no wire API"}; the gateway cannot translate ${api} to it`,
      };
    }
    if (upstreamApi !== api && resolved.api !== upstreamApi) {
      try {
        resolved = this.resolver.resolve(model, { api: upstreamApi as WireApi });
      } catch {
        // resolved once already: the same model resolves again
      }
    }
    if (resolved.baseUrl === undefined) {
      return {
        ok: false,
        status: 400,
        type: "invalid_request_error",
        message: `provider "${resolved.provider}" has no base URL; set base_url for it in model_providers`,
      };
    }
    const info = getProvider(resolved.provider);
    const endpoint = info?.endpoints[upstreamApi as WireApi];
    const rawPath = (endpoint?.path ?? DEFAULT_PATH[upstreamApi]).replace(
      "{model}",
      encodeURIComponent(resolved.model),
    );
    // The registry's URL has the provider's path quirks applied; use it when it is for our API.
    const full =
      resolved.api === upstreamApi && resolved.url !== undefined
        ? new URL(resolved.url)
        : new URL(`${resolved.baseUrl.replace(/\/+$/, "")}${rawPath}`);
    const base = full;
    const auth = endpoint?.auth ?? resolved.auth;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(resolved.headers)) headers[k.toLowerCase()] = v;
    let authHeader: string | undefined;
    let path = `${full.pathname}${full.search}`;
    if (auth.style === "bearer") authHeader = "authorization";
    else if (auth.style === "x-api-key") authHeader = (auth.header ?? "x-api-key").toLowerCase();
    if (!resolved.auth.passthrough) {
      const key = keyFromEnv(resolved.auth.keyEnv, this.env);
      if (key === undefined && auth.style !== "none" && !auth.optional) {
        return {
          ok: false,
          status: 400,
          type: "invalid_request_error",
          message: `provider "${resolved.provider}" has no credential: set ${resolved.auth.keyEnv.join(" or ") || "its access_key"} in the gateway's environment`,
        };
      }
      if (key !== undefined) {
        if (auth.style === "bearer") headers["authorization"] = `Bearer ${key.value}`;
        else if (auth.style === "x-api-key" && authHeader) headers[authHeader] = key.value;
        else if (auth.style === "query") {
          const sep = path.includes("?") ? "&" : "?";
          path += `${sep}${encodeURIComponent(auth.param ?? "key")}=${encodeURIComponent(key.value)}`;
        }
      }
    }
    return {
      ok: true,
      target: {
        provider: resolved.provider,
        model: resolved.model,
        clientModel: model,
        api: upstreamApi,
        translated: upstreamApi !== api,
        origin: base.origin,
        path,
        pathname: full.pathname,
        headers,
        passthrough: resolved.auth.passthrough,
        authHeader,
        streamUsageOption: resolved.streamUsageOption,
        maxOutput: resolved.limits?.maxOutput,
        price: resolved.price,
        kind: resolved.kind,
      },
    };
  }
}
