import { readFile } from "node:fs/promises";
import {
  didYouMean,
  formatKeyPath,
  formatSchemaIssue,
  lineColAt,
  suggest,
} from "@bottlekit/diagnostics";
import { validateRoutes } from "@bottlekit/egress-dlp";
import { validateRegistryConfig } from "@bottlekit/provider-registry";
import { type Document, isMap, isScalar, isSeq, parseDocument } from "yaml";
import { z } from "zod";
import { GatewayError } from "./errors.ts";

// The gateway's config file: Plano-style `model_providers` / `model_aliases` (validated by
// provider-registry), egress `routes` (validated by egress-dlp), plus the gateway's own keys.

const REGISTRY_KEYS = ["version", "model_providers", "llm_providers", "model_aliases"] as const;

const budgetSchema = z.strictObject({
  scope: z.enum(["agent", "bottle", "global", "ceiling"]),
  key: z.string().min(1).optional(),
  provider: z.string().min(1),
  tokens: z.number().int().positive().optional(),
  usd: z.number().positive().optional(),
  window: z
    .string()
    .regex(/^(none|daily|weekly|monthly|[1-9][0-9]*d)$/, "use none, daily, weekly, monthly or <N>d")
    .optional(),
  policy: z.enum(["cutoff", "freeze", "kill"]).optional(),
});

const dlpSchema = z.strictObject({
  outbound: z
    .strictObject({
      /** What a finding does: refuse the call (403) or replace the secret and forward. */
      on_match: z.enum(["block", "redact"]).default("block"),
      detectors: z
        .array(z.enum(["token_patterns", "known_secrets"]))
        .default(["token_patterns", "known_secrets"]),
      /** Env vars holding canary tokens (values never go in the config file). */
      canary_env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
      /** Extra env vars whose values are secrets the gateway must never let out. */
      known_secret_env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
    })
    .default({
      on_match: "block",
      detectors: ["token_patterns", "known_secrets"],
      canary_env: [],
      known_secret_env: [],
    }),
  inbound: z
    .strictObject({
      /** What an injection finding in a response does: flag it (log + metric) or end the response. */
      on_match: z.enum(["warn", "block"]).default("warn"),
      enabled: z.boolean().default(true),
    })
    .default({ on_match: "warn", enabled: true }),
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
  budgets: z.array(budgetSchema).default([]),
  /** Policy of budgets that name none. */
  default_policy: z.enum(["cutoff", "freeze", "kill"]).optional(),
  dlp: dlpSchema.default({
    outbound: {
      on_match: "block",
      detectors: ["token_patterns", "known_secrets"],
      canary_env: [],
      known_secret_env: [],
    },
    inbound: { on_match: "warn", enabled: true },
  }),
  routes: z.unknown().optional(),
  timeouts: z
    .strictObject({
      upstream_ms: z.number().int().positive().default(120_000),
      stream_idle_ms: z.number().int().positive().default(120_000),
      drain_ms: z.number().int().positive().default(30_000),
    })
    .default({ upstream_ms: 120_000, stream_idle_ms: 120_000, drain_ms: 30_000 }),
  /** Largest request body accepted (413 above it). */
  max_body_bytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** Output cap assumed for reservations when the client and the catalog give none. */
  default_max_tokens: z.number().int().positive().default(4096),
});

export type GatewayConfig = z.output<typeof gatewaySchema>;
export type BudgetConfig = z.output<typeof budgetSchema>;

export interface ConfigValidation {
  value: GatewayConfig | undefined;
  /** The registry's part of the config, ready for `createRegistry`. */
  registryInput: Record<string, unknown>;
  warnings: string[];
  /** `"key.path: message"` entries. */
  errors: string[];
}

const TOP_KEYS = Object.keys(gatewaySchema.shape);

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
  const parsed = gatewaySchema.safeParse(obj);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys) {
          const where = formatKeyPath([...issue.path, k]);
          const guess = issue.path.length === 0 ? didYouMean(suggest(k, TOP_KEYS, 1)) : "";
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
    text = await readFile(file, "utf8");
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
