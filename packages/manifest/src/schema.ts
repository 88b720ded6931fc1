import { lazyObject, once } from "@bottlekit/diagnostics";
import { routeSchema } from "@bottlekit/egress-dlp";
import { z } from "zod";
import { ENV_NAME_PATTERN, NAME_PATTERN } from "./names.ts";

/** Agent CLIs a bottle can run without a custom command. */
export const AGENT_PROVIDERS = ["claude", "codex", "opencode", "agentcli"] as const;
export type AgentProviderName = (typeof AGENT_PROVIDERS)[number];

export const CUTOFF_POLICIES = ["cutoff", "freeze", "kill"] as const;
export type CutoffPolicy = (typeof CUTOFF_POLICIES)[number];

/**
 * Every schema here is built on its first use, not at import: zod builds a few hundred objects
 * for these (and egress-dlp's route schema inside them), a cost every process importing this
 * package paid before, `bottle run` included when it has no manifest to validate (`once` and
 * `lazyObject` from @bottlekit/diagnostics; the exported schemas stand for the built ones).
 */
const nameRef = once(() =>
  z.string().regex(NAME_PATTERN, "must be a manifest name matching ^[a-z][a-z0-9-]*$"),
);
const envVarName = once(() =>
  z.string().regex(ENV_NAME_PATTERN, "must be an environment variable name like MY_TOKEN"),
);

/**
 * `env` values: a literal, `"?"` or `"?message"` (asked at launch), or `"${HOST_VAR}"` (copied
 * from the host). Numbers and booleans are accepted and used as their text.
 */
const envSchema = once(() =>
  z.record(envVarName(), z.union([z.string(), z.number(), z.boolean()])),
);

const agentProviderSchema = once(() =>
  z
    .strictObject({
      /** One of the agent CLIs bottlekit knows. */
      name: z.enum(AGENT_PROVIDERS).optional(),
      /** A custom agent command as argv (instead of `name`). */
      command: z.array(z.string().min(1)).min(1).optional(),
      /** Host environment variables holding the agent's credentials, injected by the gateway. */
      credentials: z.array(envVarName()).optional(),
    })
    .superRefine((p, ctx) => {
      if ((p.name === undefined) === (p.command === undefined)) {
        ctx.addIssue({
          code: "custom",
          message: "set exactly one of `name` (claude, codex, opencode, agentcli) or `command`",
        });
      }
    }),
);

const egressSchema = once(() =>
  z.strictObject({
    /** Allowed destinations; merged with inherited routes by host (a child route replaces). */
    routes: z.array(routeSchema).optional(),
    /** Log every egress request of this bottle. */
    log: z.boolean().optional(),
    /** `false`: start from no inherited routes, only this bottle's own. Default `true`. */
    inherit_routes: z.boolean().optional(),
  }),
);

const budgetEntrySchema = once(() =>
  z.strictObject({
    /** Token budget for this provider. */
    tokens: z.int().positive(),
    /** Optional spending cap in US dollars. */
    usd: z.number().positive().optional(),
    /** Optional rolling window like `30m`, `24h`, `7d`, `4w`; absent means the bottle's lifetime. */
    window: z
      .string()
      .regex(/^[1-9][0-9]*[mhdw]$/, "must be a duration like 30m, 24h, 7d or 4w")
      .optional(),
  }),
);

/** Budgets keyed by provider id (`anthropic`, `openai`, …). */
const budgetSchema = once(() =>
  z.record(
    z.string().regex(/^[a-z][a-z0-9._-]*$/, "must be a provider id like anthropic or openai"),
    budgetEntrySchema(),
  ),
);

const execPolicySchema = once(() =>
  z.strictObject({
    /** Rule files (Codex `.rules` or bottlekit policy), relative to `$BOTTLEKIT_HOME`. */
    rules: z.array(z.string().min(1)).optional(),
  }),
);

const sandboxSchema = once(() => {
  const pathList = z.array(z.string().min(1));
  return z.strictObject({
    filesystem: z
      .strictObject({
        read_only: pathList.optional(),
        read_write: pathList.optional(),
        deny_read: pathList.optional(),
      })
      .optional(),
  });
});

const gitIdentitySchema = once(() =>
  z.strictObject({
    name: z.string().min(1).optional(),
    email: z.string().min(1).optional(),
  }),
);

/** Frontmatter of `$BOTTLEKIT_HOME/bottles/<name>.md`, built on first use. */
export const bottleSchemaOf = once(() =>
  z.strictObject({
    description: z.string().optional(),
    extends: z.union([nameRef(), z.array(nameRef())]).optional(),
    env: envSchema().optional(),
    agent_provider: agentProviderSchema().optional(),
    egress: egressSchema().optional(),
    budget: budgetSchema().optional(),
    cutoff: z.enum(CUTOFF_POLICIES).optional(),
    supervise: z.boolean().optional(),
    exec_policy: execPolicySchema().optional(),
    sandbox: sandboxSchema().optional(),
    git_identity: gitIdentitySchema().optional(),
  }),
);

/** Claude Code subagent keys: accepted so those files load, and ignored with a warning. */
export const IGNORED_AGENT_KEYS = ["name", "tools", "color"] as const;

/** Frontmatter of `agents/<name>.md` (home or project), built on first use. */
export const agentSchemaOf = once(() =>
  z.strictObject({
    bottle: nameRef(),
    description: z.string().optional(),
    model: z.string().min(1).optional(),
    budget: budgetSchema().optional(),
    skills: z.array(z.string().min(1)).optional(),
    git_identity: gitIdentitySchema().optional(),
    name: z.unknown().optional(),
    tools: z.unknown().optional(),
    color: z.unknown().optional(),
  }),
);

/** Frontmatter of `$BOTTLEKIT_HOME/bottles/<name>.md` (built when first used). */
export const bottleSchema = lazyObject(bottleSchemaOf);
/** Frontmatter of `agents/<name>.md`, home or project (built when first used). */
export const agentSchema = lazyObject(agentSchemaOf);

export type BottleFrontmatter = z.output<ReturnType<typeof bottleSchemaOf>>;
export type AgentFrontmatter = z.output<ReturnType<typeof agentSchemaOf>>;
export type BudgetEntry = z.output<ReturnType<typeof budgetEntrySchema>>;
export type AgentProvider = z.output<ReturnType<typeof agentProviderSchema>>;
export type GitIdentity = z.output<ReturnType<typeof gitIdentitySchema>>;

/** JSON Schema (draft 2020-12) of bottle frontmatter, generated from the zod schema. */
export function bottleJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(bottleSchemaOf(), { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}

/** JSON Schema (draft 2020-12) of agent frontmatter, generated from the zod schema. */
export function agentJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(agentSchemaOf(), { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}
