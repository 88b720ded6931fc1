import { didYouMean, lazyObject, once, suggest } from "@bottlekit/diagnostics";
import { z } from "zod";
import { allProviderNames, getProvider } from "./providers.ts";
import type { ProviderInfo } from "./types.ts";
import { formatIssues } from "./zod-issues.ts";

// Plano-style provider config: `model_providers` entries and `model_aliases`.

const ENV_REF = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/;
const CREDENTIAL_HEADERS = new Set([
  "authorization",
  "x-api-key",
  "api-key",
  "x-goog-api-key",
  "proxy-authorization",
]);

/**
 * The schemas are built on first use, not at import (every process importing the registry paid for
 * them, `bottle run` included); the exported ones stand for the built ones.
 */
const schemasOf = once(() => {
  const modelProviderEntrySchema = z.strictObject({
    /** Public name clients ask for. Defaults to `model`. */
    name: z.string().trim().min(1).optional(),
    /** `provider/model`; the model part may contain `/`; `provider/*` is a wildcard. */
    model: z.string().trim().min(1),
    /** Wire behaviour of an unknown prefix: a built-in provider id (`openai`, `anthropic`, …). */
    provider_interface: z.string().trim().min(1).optional(),
    /** Legacy Plano spelling of provider_interface. */
    provider: z.string().trim().min(1).optional(),
    /** `$ENV_VAR` (or `${ENV_VAR}`) holding the key. Literal keys are refused. */
    access_key: z.string().trim().min(1).optional(),
    base_url: z.string().trim().min(1).optional(),
    default: z.boolean().optional(),
    /** Forward the client's own Authorization header instead of injecting a key. */
    passthrough_auth: z.boolean().optional(),
    /** Extra request headers; values may be `$ENV_VAR` references. */
    headers: z.record(z.string(), z.string()).optional(),
    http_host: z.string().trim().min(1).optional(),
  });

  const modelAliasSchema = z.strictObject({ target: z.string().trim().min(1) });

  const registryConfigSchema = z.strictObject({
    version: z.string().optional(),
    model_providers: z.array(modelProviderEntrySchema).optional(),
    /** Legacy Plano key, read when model_providers is absent. */
    llm_providers: z.array(modelProviderEntrySchema).optional(),
    model_aliases: z.record(z.string().trim().min(1), modelAliasSchema).optional(),
  });
  return { modelProviderEntrySchema, modelAliasSchema, registryConfigSchema };
});
type Schemas = ReturnType<typeof schemasOf>;

export const modelProviderEntrySchema = lazyObject(() => schemasOf().modelProviderEntrySchema);
export const modelAliasSchema = lazyObject(() => schemasOf().modelAliasSchema);
/** Schema of the provider-registry config. */
export const registryConfigSchema = lazyObject(() => schemasOf().registryConfigSchema);

export type RegistryConfigInput = z.input<Schemas["registryConfigSchema"]>;
export type ModelProviderEntryInput = z.input<Schemas["modelProviderEntrySchema"]>;

/** JSON Schema (draft 2020-12) of the config, generated from the zod schema. */
export function registryConfigJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(schemasOf().registryConfigSchema, { target: "draft-2020-12" }) as Record<
    string,
    unknown
  >;
}

/** One validated `model_providers` entry. */
export interface ProviderEntry {
  readonly index: number;
  readonly name: string;
  /** As written (`openai/gpt-4o`). */
  readonly model: string;
  /** Canonical provider id for a built-in prefix, the lowercased prefix otherwise. */
  readonly provider: string;
  /** Part after `provider/`; `*` for a wildcard. */
  readonly modelId: string;
  readonly wildcard: boolean;
  /** The built-in provider this entry speaks like (its own prefix, or provider_interface). */
  readonly interface: ProviderInfo;
  /** True when the prefix is not a built-in provider. */
  readonly custom: boolean;
  readonly accessKeyEnv?: string;
  readonly baseUrl?: string;
  readonly default: boolean;
  readonly passthroughAuth: boolean;
  readonly headers: Readonly<Record<string, string>>;
  readonly httpHost?: string;
}

export interface RegistryConfig {
  readonly providers: readonly ProviderEntry[];
  /** alias → target, as written. */
  readonly aliases: Readonly<Record<string, string>>;
  /** Name of the default entry, if one is marked. */
  readonly defaultName?: string;
}

export interface ValidationResult {
  /** The normalized config; undefined when there are errors. */
  readonly value: RegistryConfig | undefined;
  readonly warnings: readonly string[];
  /** `"key.path: message"` entries. */
  readonly errors: readonly string[];
}

const TOP_KEYS = once(() => Object.keys(schemasOf().registryConfigSchema.shape));
const ENTRY_KEYS = once(() => Object.keys(schemasOf().modelProviderEntrySchema.shape));

function keysAt(path: readonly PropertyKey[]): readonly string[] | undefined {
  if (path.length === 0) return TOP_KEYS();
  if ((path[0] === "model_providers" || path[0] === "llm_providers") && path.length === 2)
    return ENTRY_KEYS();
  if (path[0] === "model_aliases" && path.length === 2) return ["target"];
  return undefined;
}

/** Split `provider/model`; the model part keeps any further `/`. */
export function splitModel(model: string): { prefix: string; rest: string } | undefined {
  const slash = model.indexOf("/");
  if (slash <= 0) return undefined;
  return { prefix: model.slice(0, slash), rest: model.slice(slash + 1) };
}

function isLoopback(url: URL): boolean {
  const h = url.hostname;
  return (
    h === "localhost" ||
    h === "127.0.0.1" ||
    h === "::1" ||
    h === "[::1]" ||
    h.endsWith(".localhost")
  );
}

/**
 * Validate a Plano-style config. Never throws: every problem is reported as `"key.path: message"`
 * with a fix, and `value` is set only when there are no errors.
 */
export function validateRegistryConfig(input: unknown): ValidationResult {
  const parsed = schemasOf().registryConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    return { value: undefined, warnings: [], errors: formatIssues(parsed.error.issues, keysAt) };
  }
  return checkRegistryConfig(parsed.data);
}

/** A config in the form the schema outputs (what `checkRegistryConfig` takes). */
export type RegistryConfigData = z.output<Schemas["registryConfigSchema"]>;

/**
 * Configs this module validated, with their warnings: `createRegistry` takes one as is instead
 * of validating it again. Each is frozen through and through, so it is still what was checked.
 */
const validated = new WeakMap<RegistryConfig, readonly string[]>();

/** The warnings of a config `validateRegistryConfig` or `checkRegistryConfig` returned. */
export function warningsOfValidated(config: unknown): readonly string[] | undefined {
  return typeof config === "object" && config !== null
    ? validated.get(config as RegistryConfig)
    : undefined;
}

/**
 * The checks `validateRegistryConfig` runs after its schema, for a config the code builds itself
 * in the schema's output form (strings trimmed, known keys only): the same result, without
 * building or running the schema (zod). A config a user wrote goes through
 * `validateRegistryConfig`.
 */
export function checkRegistryConfig(data: RegistryConfigData): ValidationResult {
  const warnings: string[] = [];
  const errors: string[] = [];
  let listKey = "model_providers";
  let list = data.model_providers;
  if (!list && data.llm_providers) {
    listKey = "llm_providers";
    list = data.llm_providers;
    warnings.push("llm_providers: deprecated key, rename it to model_providers");
  } else if (list && data.llm_providers) {
    warnings.push("llm_providers: ignored because model_providers is set; remove it");
  }

  const entries: ProviderEntry[] = [];
  const byName = new Map<string, number>();
  const byModel = new Map<string, number>();
  const defaults: number[] = [];

  (list ?? []).forEach((raw, i) => {
    const at = `${listKey}[${i}]`;
    const before = errors.length;
    const iface = raw.provider_interface ?? raw.provider;
    if (raw.provider !== undefined) {
      warnings.push(`${at}.provider: deprecated, write provider_interface instead`);
      if (raw.provider_interface !== undefined) {
        errors.push(
          `${at}.provider: set either provider_interface or the legacy provider, not both`,
        );
      }
    }
    const split = splitModel(raw.model);
    let providerId: string;
    let modelId: string;
    let base: ProviderInfo | undefined;
    let custom = false;
    if (!split || split.rest === "") {
      if (!iface) {
        errors.push(
          `${at}.model: "${raw.model}" has no provider prefix; write it as provider/model (e.g. openai/${raw.model}) or set provider_interface`,
        );
        return;
      }
      base = getProvider(iface);
      providerId = base?.id ?? iface.toLowerCase();
      modelId = raw.model;
    } else {
      const known = getProvider(split.prefix);
      modelId = split.rest;
      if (known) {
        base = known;
        providerId = known.id;
        if (iface !== undefined) {
          errors.push(
            `${at}.provider_interface: remove it; the prefix "${split.prefix}" already names the built-in provider ${known.id}`,
          );
        }
      } else {
        custom = true;
        providerId = split.prefix.toLowerCase();
        const hint = didYouMean(suggest(split.prefix, allProviderNames(), 1));
        if (!iface) {
          errors.push(
            `${at}.provider_interface: "${split.prefix}" is not a built-in provider${hint ? ` (${hint})` : ""}; a custom prefix needs provider_interface (the API it speaks, e.g. openai) and base_url`,
          );
        } else {
          base = getProvider(iface);
        }
        if (!raw.base_url) {
          errors.push(`${at}.base_url: required for the custom provider prefix "${split.prefix}"`);
        }
      }
    }
    if (iface !== undefined && !base && (!split || custom)) {
      const hint = didYouMean(suggest(iface, allProviderNames(), 1));
      errors.push(
        `${at}.provider_interface: unknown interface "${iface}"${hint ? `, ${hint}` : ""}; use a built-in provider id such as openai or anthropic`,
      );
    }
    const wildcard = modelId === "*";
    if (modelId.includes("*") && !wildcard) {
      errors.push(`${at}.model: "*" is only allowed as the whole model part (provider/*)`);
    }

    let accessKeyEnv: string | undefined;
    if (raw.access_key !== undefined) {
      const m = ENV_REF.exec(raw.access_key);
      if (m) accessKeyEnv = m[1] ?? m[2];
      else {
        errors.push(
          `${at}.access_key: must reference an environment variable ($NAME or \${NAME}); literal keys are refused so they never sit in config files, logs or dumps`,
        );
      }
      if (raw.passthrough_auth) {
        warnings.push(
          `${at}.access_key: ignored because passthrough_auth forwards the client's credential`,
        );
      }
    }

    let baseUrl: string | undefined;
    if (raw.base_url !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(raw.base_url);
      } catch {
        errors.push(
          `${at}.base_url: "${raw.base_url}" is not an absolute URL (e.g. https://host/v1)`,
        );
      }
      if (url) {
        if (url.protocol !== "https:" && url.protocol !== "http:") {
          errors.push(`${at}.base_url: scheme must be http or https, got ${url.protocol}`);
        } else if (url.username || url.password) {
          errors.push(
            `${at}.base_url: credentials in the URL are refused; use access_key: $ENV_VAR`,
          );
        } else {
          if (url.protocol === "http:" && !isLoopback(url)) {
            warnings.push(
              `${at}.base_url: plain http to ${url.hostname} sends the key unencrypted; use https`,
            );
          }
          baseUrl = raw.base_url.replace(/\/+$/, "");
        }
      }
    } else if (base?.baseUrlRequired) {
      errors.push(
        `${at}.base_url: ${base.id} has no default endpoint; set base_url (e.g. https://<resource>.openai.azure.com)`,
      );
    }

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw.headers ?? {})) {
      if (CREDENTIAL_HEADERS.has(k.toLowerCase()) && !ENV_REF.test(v.trim())) {
        errors.push(
          `${at}.headers.${k}: credential headers must be an $ENV_VAR reference, or use access_key`,
        );
        continue;
      }
      headers[k] = v;
    }

    const name = raw.name ?? raw.model;
    const prevName = byName.get(name);
    if (prevName !== undefined) {
      errors.push(
        `${at}.name: duplicate name "${name}" (already used by ${listKey}[${prevName}]); names must be unique`,
      );
    } else byName.set(name, i);
    const modelKey = `${providerId}/${modelId}`;
    const prevModel = byModel.get(modelKey);
    if (prevModel !== undefined && raw.name === undefined) {
      // name defaulted to model: already reported as a duplicate name
    } else if (prevModel !== undefined) {
      errors.push(
        `${at}.model: "${raw.model}" is already configured by ${listKey}[${prevModel}]; model ids must be unique`,
      );
    } else byModel.set(modelKey, i);
    if (raw.default) {
      defaults.push(i);
      if (wildcard)
        errors.push(
          `${at}.default: a wildcard entry (${raw.model}) cannot be the default; pick a concrete model`,
        );
    }
    if (errors.length > before || !base) return;
    entries.push(
      Object.freeze({
        index: i,
        name,
        model: raw.model,
        provider: providerId,
        modelId,
        wildcard,
        interface: base,
        custom,
        ...(accessKeyEnv ? { accessKeyEnv } : {}),
        ...(baseUrl ? { baseUrl } : {}),
        default: raw.default === true,
        passthroughAuth: raw.passthrough_auth === true,
        headers: Object.freeze(headers),
        ...(raw.http_host ? { httpHost: raw.http_host } : {}),
      }),
    );
  });

  if (defaults.length > 1) {
    errors.push(
      `${listKey}: ${defaults.length} entries set default: true (${defaults.map((d) => `[${d}]`).join(", ")}); keep at most one`,
    );
  }

  // Aliases must end at a configured model, possibly through other aliases, without a cycle.
  const aliases: Record<string, string> = {};
  const aliasInput = data.model_aliases ?? {};
  const configured = new Set<string>();
  // `openai/*` configures every `openai/<model>`: an alias may point at any of them.
  const wildcardPrefixes: string[] = [];
  for (const e of list ?? []) {
    configured.add(e.name ?? e.model);
    configured.add(e.model);
    if (e.model.endsWith("/*")) wildcardPrefixes.push(e.model.slice(0, -1));
  }
  const isConfigured = (model: string): boolean =>
    configured.has(model) ||
    wildcardPrefixes.some((p) => model.length > p.length && model.startsWith(p));
  for (const [alias, { target }] of Object.entries(aliasInput)) {
    aliases[alias] = target;
    const at = `model_aliases.${alias}.target`;
    if (configured.has(alias)) {
      errors.push(`model_aliases.${alias}: shadows a configured model name; rename the alias`);
      continue;
    }
    const seen = new Set<string>([alias]);
    let cur = target;
    let ok = false;
    for (;;) {
      if (isConfigured(cur)) {
        ok = true;
        break;
      }
      const next = aliasInput[cur]?.target;
      if (next === undefined) break;
      if (seen.has(cur)) break;
      seen.add(cur);
      cur = next;
      if (seen.has(cur)) {
        errors.push(
          `${at}: alias cycle ${[...seen, cur].join(" -> ")}; point one alias at a configured model`,
        );
        ok = true; // already reported
        break;
      }
    }
    if (!ok) {
      const hint = didYouMean(suggest(cur, [...configured, ...Object.keys(aliasInput)], 1));
      errors.push(
        `${at}: "${cur}" is not a configured model${hint ? ` (${hint})` : ""}; aliases must point at a model_providers name or model`,
      );
    }
  }

  if (errors.length) return { value: undefined, warnings, errors };
  const def = entries.find((e) => e.default);
  const value: RegistryConfig = Object.freeze({
    providers: Object.freeze(entries),
    aliases: Object.freeze(aliases),
    ...(def ? { defaultName: def.name } : {}),
  });
  validated.set(value, Object.freeze([...warnings]));
  return {
    value,
    warnings,
    errors,
  };
}
