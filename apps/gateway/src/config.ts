import { readFileSync } from "node:fs";
import {
  didYouMean,
  formatKeyPath,
  formatSchemaIssue,
  lineColAt,
  once,
  suggest,
} from "@bottlekit/diagnostics";
import { validateRoutes } from "@bottlekit/egress-dlp";
import {
  checkRegistryConfig,
  type RegistryConfig,
  validateRegistryConfig,
} from "@bottlekit/provider-registry";
import { type Document, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { z } from "zod";
import { GatewayError } from "./errors.ts";

// The gateway's config file: Plano-style `model_providers` / `model_aliases` (validated by
// provider-registry), egress `routes` (validated by egress-dlp), plus the gateway's own keys.

const REGISTRY_KEYS = ["version", "model_providers", "llm_providers", "model_aliases"] as const;

/** Built on first use, like the gateway schema below. */
const budgetSchemaOf = once(() =>
  z.strictObject({
    scope: z.enum(["agent", "bottle", "global", "ceiling"]),
    key: z.string().min(1).optional(),
    provider: z.string().min(1),
    tokens: z.number().int().positive().optional(),
    usd: z.number().positive().optional(),
    window: z
      .string()
      .regex(
        /^(none|daily|weekly|monthly|[1-9][0-9]*d)$/,
        "use none, daily, weekly, monthly or <N>d",
      )
      .optional(),
    policy: z.enum(["cutoff", "freeze", "kill"]).optional(),
  }),
);

/** The keys of the config that have a default, as the schema outputs them. */
interface ConfigDefaults {
  budgets: BudgetConfig[];
  dlp: {
    outbound: {
      on_match: "block" | "redact";
      detectors: ("token_patterns" | "known_secrets")[];
      canary_env: string[];
      known_secret_env: string[];
    };
    inbound: { on_match: "warn" | "block"; enabled: boolean };
  };
  timeouts: { upstream_ms: number; stream_idle_ms: number; drain_ms: number };
  max_body_bytes: number;
  default_max_tokens: number;
}

/**
 * What the schema fills in for a key a config leaves out, as one object per call (a caller may
 * keep it). The schema's defaults are taken from here, and so is a config the code builds itself
 * (zero-config), which skips the schema.
 */
export function configDefaults(): ConfigDefaults {
  return {
    budgets: [],
    dlp: {
      outbound: {
        on_match: "block",
        detectors: ["token_patterns", "known_secrets"],
        canary_env: [],
        known_secret_env: [],
      },
      inbound: { on_match: "warn", enabled: true },
    },
    timeouts: { upstream_ms: 120_000, stream_idle_ms: 120_000, drain_ms: 30_000 },
    max_body_bytes: 16 * 1024 * 1024,
    default_max_tokens: 4096,
  };
}

/**
 * The schemas are built on first use, not at import: building them (and loading zod) was most of
 * the gateway's import, which an embedded zero-config start (`bottle run`) never needs.
 */
const schemasOf = once(() => {
  const d = configDefaults();
  const dlpSchema = z.strictObject({
    outbound: z
      .strictObject({
        /** What a finding does: refuse the call (403) or replace the secret and forward. */
        on_match: z.enum(["block", "redact"]).default(d.dlp.outbound.on_match),
        detectors: z
          .array(z.enum(["token_patterns", "known_secrets"]))
          .default(() => configDefaults().dlp.outbound.detectors),
        /** Env vars holding canary tokens (values never go in the config file). */
        canary_env: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
          .default(() => configDefaults().dlp.outbound.canary_env),
        /** Extra env vars whose values are secrets the gateway must never let out. */
        known_secret_env: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
          .default(() => configDefaults().dlp.outbound.known_secret_env),
      })
      .default(() => configDefaults().dlp.outbound),
    inbound: z
      .strictObject({
        /** What an injection finding in a response does: flag it (log + metric) or end the response. */
        on_match: z.enum(["warn", "block"]).default(d.dlp.inbound.on_match),
        enabled: z.boolean().default(d.dlp.inbound.enabled),
      })
      .default(() => configDefaults().dlp.inbound),
  });

  const gatewaySchema = z.strictObject({
    version: z.unknown().optional(),
    model_providers: z.unknown().optional(),
    llm_providers: z.unknown().optional(),
    model_aliases: z.unknown().optional(),
    /** `HOST:PORT`; the `--listen` flag wins. */
    listen: z.string().optional(),
    /** Store URL (`sqlite:<path>`); the `--store` flag wins. */
    store: z.string().optional(),
    budgets: z.array(budgetSchemaOf()).default(() => configDefaults().budgets),
    /** Policy of budgets that name none. */
    default_policy: z.enum(["cutoff", "freeze", "kill"]).optional(),
    dlp: dlpSchema.default(() => configDefaults().dlp),
    routes: z.unknown().optional(),
    timeouts: z
      .strictObject({
        upstream_ms: z.number().int().positive().default(d.timeouts.upstream_ms),
        stream_idle_ms: z.number().int().positive().default(d.timeouts.stream_idle_ms),
        drain_ms: z.number().int().positive().default(d.timeouts.drain_ms),
      })
      .default(() => configDefaults().timeouts),
    /** Largest request body accepted (413 above it). */
    max_body_bytes: z.number().int().positive().default(d.max_body_bytes),
    /** Output cap assumed for reservations when the client and the catalog give none. */
    default_max_tokens: z.number().int().positive().default(d.default_max_tokens),
  });
  return { gatewaySchema, topKeys: Object.keys(gatewaySchema.shape) };
});
type Schemas = ReturnType<typeof schemasOf>;

export type GatewayConfig = z.output<Schemas["gatewaySchema"]>;
export type BudgetConfig = z.output<ReturnType<typeof budgetSchemaOf>>;

export interface ConfigValidation {
  value: GatewayConfig | undefined;
  /** The registry's part of the config, ready for `createRegistry`. */
  registryInput: Record<string, unknown>;
  warnings: string[];
  /** `"key.path: message"` entries. */
  errors: string[];
}

/** Validates a parsed config object. Never throws. */
export function validateGatewayConfig(input: unknown, env?: NodeJS.ProcessEnv): ConfigValidation {
  const warnings: string[] = [];
  const errors: string[] = [];
  const obj = input ?? {};
  if (typeof obj !== "object" || Array.isArray(obj)) {
    return {
      value: undefined,
      registryInput: {},
      warnings,
      errors: ["(root): the config must be a mapping of keys"],
    };
  }
  const { gatewaySchema, topKeys } = schemasOf();
  const parsed = gatewaySchema.safeParse(obj);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys) {
          const where = formatKeyPath([...issue.path, k]);
          const guess = issue.path.length === 0 ? didYouMean(suggest(k, topKeys, 1)) : "";
          errors.push(`${where}: unknown key${guess ? `; ${guess}` : ""}`);
        }
      } else {
        errors.push(formatSchemaIssue(issue, obj));
      }
    }
  }
  const registryInput: Record<string, unknown> = {};
  for (const k of REGISTRY_KEYS) {
    const v = (obj as Record<string, unknown>)[k];
    if (v !== undefined) registryInput[k] = v;
  }
  const reg = validateRegistryConfig(registryInput);
  errors.push(...reg.errors);
  warnings.push(...reg.warnings);
  const routes = (obj as Record<string, unknown>)["routes"];
  if (routes !== undefined) {
    const rv = validateRoutes(routes);
    for (const e of rv.errors)
      errors.push(
        typeof e === "string"
          ? e.startsWith("routes")
            ? e
            : `routes${e.startsWith("[") ? "" : "."}${e}`
          : String(e),
      );
  }
  if (parsed.success) {
    for (const name of parsed.data.dlp.outbound.canary_env) {
      if ((env?.[name] ?? "") === "")
        warnings.push(
          `dlp.outbound.canary_env: ${name} is not set, so no canary is planted for it; export ${name} with a canary token or remove it`,
        );
    }
  }
  if (parsed.success && parsed.data.listen !== undefined) {
    const err = checkListen(parsed.data.listen);
    if (err) errors.push(`listen: ${err}`);
  }
  return {
    value: errors.length === 0 && parsed.success ? parsed.data : undefined,
    registryInput,
    warnings,
    errors,
  };
}

/** A validation whose registry part is already checked (`createRegistry` takes it as is). */
export interface CheckedConfig extends ConfigValidation {
  registry: RegistryConfig | undefined;
}

/**
 * The zero-config: these `model_providers` (built by the code: one wildcard entry per network
 * provider whose key is set) and the defaults for everything else. Valid by construction, so it
 * skips the schemas, which are built for what a user writes: the same value
 * `validateGatewayConfig({ model_providers })` gives (a test holds the two together), without
 * building or running zod.
 */
export function zeroConfigValidation(
  modelProviders: { model: string; access_key: string }[],
): CheckedConfig {
  const registry = checkRegistryConfig({ model_providers: modelProviders });
  return {
    value:
      registry.value === undefined
        ? undefined
        : { model_providers: modelProviders, ...configDefaults() },
    registryInput: { model_providers: modelProviders },
    warnings: [...registry.warnings],
    errors: [...registry.errors],
    registry: registry.value,
  };
}

/** Parses `HOST:PORT` (IPv6 as `[::1]:4100`). */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

function checkListen(text: string): string | undefined {
  return parseListen(text) ? undefined : `"${text}" is not HOST:PORT; use e.g. 127.0.0.1:4100`;
}

/** True for addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return (
    host === "localhost" || host === "::1" || /^127\./.test(host) || host === "::ffff:127.0.0.1"
  );
}

/** Reads and validates a YAML (or JSON) config file; errors name the file and key path. */
export async function loadGatewayConfig(
  file: string,
  env?: NodeJS.ProcessEnv,
): Promise<ConfigValidation> {
  let text: string;
  try {
    // Read synchronously: one small file, once per start; node:fs/promises would be one more
    // module loaded by every process importing the gateway.
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new GatewayError(
      "E_CONFIG",
      `cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        hint: "pass an existing file with --config, or omit it for zero-config mode",
        cause: error,
      },
    );
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      registryInput: {},
      warnings: [],
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: ${e.message.split("\n")[0]}`;
      }),
    };
  }
  const v = validateGatewayConfig(doc.toJS(), env);
  const at = (entry: string) => `${file}${positionOf(doc, text, entry)}: ${entry}`;
  return { ...v, errors: v.errors.map(at), warnings: v.warnings.map(at) };
}

/**
 * `:line:col` of the key path an entry starts with (`budgets[0].scope: …`), found in the YAML
 * document: the value's position, or the key's when the entry is about an unknown key. "" when
 * the path is not in the file (a default, or a message without a path).
 */
function positionOf(doc: Document, text: string, entry: string): string {
  const m = /^((?:[A-Za-z_][\w-]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\]|\.)+): /.exec(entry);
  if (!m) return "";
  const path: (string | number)[] = [];
  for (const seg of (m[1] as string).matchAll(
    /([A-Za-z_][\w-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g,
  )) {
    if (seg[1] !== undefined) path.push(seg[1]);
    else if (seg[2] !== undefined) path.push(Number(seg[2]));
    else path.push(JSON.parse(seg[3] as string) as string);
  }
  const wantKey = /^[^:]+: unknown key/.test(entry);
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      const keyRange = isScalar(pair.key) ? pair.key.range : undefined;
      const valueRange = (pair.value as { range?: [number, number, number] } | null)?.range;
      offset = (wantKey ? keyRange?.[0] : (valueRange?.[0] ?? keyRange?.[0])) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as { range?: [number, number, number] } | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  if (offset === undefined) return "";
  const { line, col } = lineColAt(text, offset);
  return `:${line}:${col}`;
}
