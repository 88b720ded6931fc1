import { type createRegistry, getProvider } from "@bottlekit/provider-registry";
import type { ClientApi } from "./apis.ts";
import { keyFromEnv, upstreamApiFor } from "./router.ts";

const CLIENT_APIS: readonly ClientApi[] = ["openai-chat", "openai-responses", "anthropic-messages"];

type Registry = ReturnType<typeof createRegistry>;

/** One row of the routing table: where a configured model goes and how it authenticates. */
export interface RouteRow {
  /** What a client asks for. */
  model: string;
  provider: string;
  /** Upstream model id (`*` for a wildcard entry). */
  upstreamModel: string;
  apis: string[];
  baseUrl: string | null;
  /** `env:NAME` when the key is set, `passthrough`, `none`, or `missing:NAME|NAME`. Never a value. */
  credential: string;
  wildcard: boolean;
  default: boolean;
  kind: "network" | "local-agent";
  /** Client APIs the provider does not speak, each with the native API the gateway translates to. */
  translated: { client: ClientApi; upstream: ClientApi }[];
}

/** The client APIs a provider speaking `apis` is reached from through translation. */
export function translatedApis(
  apis: readonly string[],
): { client: ClientApi; upstream: ClientApi }[] {
  const out: { client: ClientApi; upstream: ClientApi }[] = [];
  for (const client of CLIENT_APIS) {
    if (apis.includes(client)) continue;
    const upstream = upstreamApiFor(client, apis);
    if (upstream !== undefined) out.push({ client, upstream });
  }
  return out;
}

/** The resolved routing table of the configured entries (names and env var names only). */
export function routingTable(registry: Registry, env: NodeJS.ProcessEnv): RouteRow[] {
  const rows: RouteRow[] = [];
  for (const e of registry.config.providers) {
    const info = getProvider(e.provider) ?? e.interface;
    const keyEnv = e.accessKeyEnv !== undefined ? [e.accessKeyEnv] : [...info.apiKeyEnv];
    let credential: string;
    if (e.passthroughAuth) credential = "passthrough";
    else if (info.auth.style === "none") credential = "none";
    else {
      const k = keyFromEnv(keyEnv, env);
      credential = k ? `env:${k.name}` : `missing:${keyEnv.join("|") || "access_key"}`;
    }
    rows.push({
      model: e.name,
      provider: e.provider,
      upstreamModel: e.modelId,
      apis: [...e.interface.apis],
      baseUrl: e.baseUrl ?? info.baseUrl ?? null,
      credential,
      wildcard: e.wildcard,
      default: e.default,
      kind: e.interface.kind,
      translated: e.interface.kind === "network" ? translatedApis(e.interface.apis) : [],
    });
  }
  return rows;
}

/**
 * Catalog entries that are name patterns rather than models (`openai/ft:gpt-3.5-turbo-`, the
 * prefix of fine-tunes) end in a separator: nothing a client can call, so not listed.
 */
export function isConcreteModelId(id: string): boolean {
  return /^[^/\s]+\/[A-Za-z0-9](?:[^\s]*[A-Za-z0-9])?$/.test(id);
}

/** Routable models: configured names, plus catalog models of wildcard providers that have a key. */
export function routableModels(
  registry: Registry,
  env: NodeJS.ProcessEnv,
): { id: string; provider: string; source: "config" | "catalog" }[] {
  const rows = routingTable(registry, env).filter((r) => !r.credential.startsWith("missing:"));
  const out: { id: string; provider: string; source: "config" | "catalog" }[] = [];
  const wildcardProviders = new Set<string>();
  for (const r of rows) {
    if (r.wildcard) wildcardProviders.add(r.provider);
    else out.push({ id: r.model, provider: r.provider, source: "config" });
  }
  if (wildcardProviders.size > 0) {
    for (const m of registry.listModels({ include: "catalog" })) {
      if (wildcardProviders.has(m.provider) && isConcreteModelId(m.id))
        out.push({ id: m.id, provider: m.provider, source: "catalog" });
    }
  }
  return out;
}
