import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { formatSchemaIssue, lazyObject } from "@bottlekit/diagnostics";
import { parseDocument } from "yaml";
import { z } from "zod";
import { ApprovalsError } from "./errors.ts";

/**
 * `$BOTTLEKIT_HOME/approvals.yml`: how long proposals wait, the rate limit, `auto`, and the
 * host-managed credentials an agent may ask for (`providers`). Every key is optional. Built on
 * first use: a run whose home has no approvals.yml never builds it (zod and its schemas were a
 * large part of what loading this package cost each `bottle run`).
 */
function approvalsConfigSchemaOf() {
  const duration = z
    .string()
    .regex(/^[1-9][0-9]*(ms|s|m|h|d)$/, "must be a duration like 90s, 10m, 1h or 1d");

  const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an env var name");
  const hostName = z
    .string()
    .regex(
      /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
      "must be a lower-case host name like api.example.com or *.example.com",
    );

  return z.strictObject({
    /** A pending proposal nobody decides is denied after this long (fail closed). Default 10m. */
    timeout: duration.optional(),
    /** How long a DLP `supervise` hold keeps the request waiting before refusing it. Default 60s. */
    hold_timeout: duration.optional(),
    /** Proposals per session per window. Default 10 per 1m. */
    rate_limit: z.strictObject({ proposals: z.int().positive(), per: duration }).optional(),
    /** `non-widening`: approve at once what widens nothing (e.g. removing a route). Default `off`. */
    auto: z.enum(["off", "non-widening"]).optional(),
    /** Host-managed credentials an agent may request (`request_provider`). */
    providers: z
      .array(
        z.strictObject({
          /** The name the agent sees (its placeholder is `bottlekit:resolve:env:<name>`). */
          name: envName,
          /** The controller's env var holding the value. Default: `name`. */
          host_env: envName.optional(),
          /** The only hosts it may be sent to. */
          hosts: z.array(hostName).min(1),
        }),
      )
      .optional(),
  });
}

export const approvalsConfigSchema = lazyObject(approvalsConfigSchemaOf);

export type ApprovalsConfigInput = z.input<typeof approvalsConfigSchema>;

export interface ProviderEntry {
  name: string;
  hostEnv: string;
  hosts: string[];
}

/** The config with defaults applied; durations in milliseconds. */
export interface ApprovalsConfig {
  timeoutMs: number;
  holdTimeoutMs: number;
  rateLimit: { proposals: number; perMs: number };
  auto: "off" | "non-widening";
  providers: ProviderEntry[];
}

/** `90s`, `10m`, `1h`, `1d`, `250ms` in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^([1-9][0-9]*)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s"];
  return n * unit;
}

/** Validates a config object; errors carry the key path (`where: rate_limit.per: …`). */
export function resolveConfig(input: unknown = {}, where = "approvals.yml"): ApprovalsConfig {
  const parsed = approvalsConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new ApprovalsError(
      "E_CONFIG",
      parsed.error.issues.map((i) => `${where}: ${formatSchemaIssue(i, input)}`).join("; "),
      { hint: "fix the file (see docs/approvals.md); nothing was changed" },
    );
  }
  return fromParsed(parsed.data);
}

/** The config a parsed (valid) object stands for: its values, defaults for the keys it omits. */
function fromParsed(c: z.output<typeof approvalsConfigSchema>): ApprovalsConfig {
  const ms = (d: string | undefined, fallback: number) =>
    d === undefined ? fallback : (parseDuration(d) as number);
  return {
    timeoutMs: ms(c.timeout, 10 * 60_000),
    holdTimeoutMs: ms(c.hold_timeout, 60_000),
    rateLimit: {
      proposals: c.rate_limit?.proposals ?? 10,
      perMs: ms(c.rate_limit?.per, 60_000),
    },
    auto: c.auto ?? "off",
    providers: (c.providers ?? []).map((p) => ({
      name: p.name,
      hostEnv: p.host_env ?? p.name,
      hosts: [...p.hosts],
    })),
  };
}

/** Reads `<home>/approvals.yml` when it exists (defaults otherwise). */
export function loadConfig(home: string): ApprovalsConfig {
  const file = join(home, "approvals.yml");
  // No file: the defaults. `{}` is valid as it is (every key is optional), so it is not parsed:
  // zod compiles a schema's parser on its first use, ~5 ms of an embedded controller's start.
  if (!existsSync(file)) return fromParsed({});
  const doc = parseDocument(readFileSync(file, "utf8"), { prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    throw new ApprovalsError(
      "E_CONFIG",
      `${file}${pos ? `:${pos.line}:${pos.col}` : ""}: ${first.message.split("\n")[0]}`,
      { hint: "fix the YAML syntax" },
    );
  }
  return resolveConfig(doc.toJS(), file);
}
