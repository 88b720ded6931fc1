import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  didYouMean as diagnosticsDidYouMean,
  lazyObject,
  once,
  suggest,
} from "@bottlekit/diagnostics";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { BudgetStoreError } from "./errors.ts";
import { bottlekitHome } from "./open.ts";
import type { BudgetInput, BudgetWindow, CutoffPolicy, Store } from "./types.ts";
import { isBudgetWindow } from "./window.ts";

/**
 * The schemas are built on first use, not at import (every process importing the store paid for
 * them, `bottle run` included, which reads no settings.yml to start an agent); the exported ones
 * stand for the built ones.
 */
const schemasOf = once(() => {
  const windowSchema = z
    .string()
    .refine(isBudgetWindow, {
      message: 'window must be "none", "daily", "weekly", "monthly" or "<N>d"',
    })
    .transform((w) => w as BudgetWindow);

  const policySchema = z.enum(["cutoff", "freeze", "kill"]);

  /** One provider's limit: a bare number of tokens, or an object. */
  const limitSchema = z.union([
    z.number().int().nonnegative(),
    z
      .strictObject({
        tokens: z.number().int().nonnegative().optional(),
        usd: z.number().nonnegative().optional(),
        window: windowSchema.optional(),
        policy: policySchema.optional(),
      })
      .refine((l) => l.tokens !== undefined || l.usd !== undefined, {
        message: "a budget needs tokens or usd",
      }),
  ]);

  /** Budgets keyed by provider id. */
  const budgetMapSchema = z.record(z.string().min(1), limitSchema);

  const scopedSchema = z.strictObject({ budget: budgetMapSchema });

  const settingsSchema = z.strictObject({
    /** Store URL, e.g. `sqlite:/var/lib/bottlekit/bottlekit.db`. */
    database: z.string().min(1).optional(),
    /** Default cutoff policy for budgets that do not name one. */
    shutdown: policySchema.optional(),
    /** Seconds before a reservation left by a crashed process stops counting. */
    reservation_ttl: z.number().int().positive().optional(),
    /** Global budgets per provider (the last scope of the precedence chain). */
    budget: budgetMapSchema.optional(),
    /** Per-provider ceilings that always apply on top of the governing budget. */
    ceiling: budgetMapSchema.optional(),
    bottles: z.record(z.string().min(1), scopedSchema).optional(),
    agents: z.record(z.string().min(1), scopedSchema).optional(),
  });
  return { limitSchema, settingsSchema };
});

/** The zod schema of `$BOTTLEKIT_HOME/settings.yml`. */
export const settingsSchema = lazyObject(() => schemasOf().settingsSchema);

export type Settings = z.output<ReturnType<typeof schemasOf>["settingsSchema"]>;
export type SettingsLimit = z.output<ReturnType<typeof schemasOf>["limitSchema"]>;

/** JSON Schema of settings.yml, generated from the zod schema. */
export const settingsJsonSchema = lazyObject(() =>
  z.toJSONSchema(schemasOf().settingsSchema, { io: "input" }),
);

export interface SettingsValidation {
  value: Settings | undefined;
  warnings: string[];
  /** "file:line:col: key.path: message" entries. */
  errors: string[];
}

/** " (did you mean "x"?)" for the closest known key, from @bottlekit/diagnostics. */
function didYouMean(key: string, candidates: readonly string[]): string {
  const hint = diagnosticsDidYouMean(suggest(key, candidates, 1));
  return hint === "" ? "" : ` (${hint})`;
}

const LIMIT_KEYS: readonly string[] = ["tokens", "usd", "window", "policy"];
const SCOPED_KEYS: readonly string[] = ["budget"];

/** Which key set an object at `path` has, for "did you mean". */
function knownKeysAt(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return Object.keys(schemasOf().settingsSchema.shape);
  const head = path[0];
  if ((head === "bottles" || head === "agents") && path.length === 2) return SCOPED_KEYS;
  return LIMIT_KEYS;
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(top level)" : path.map(String).join(".");
}

/**
 * Parse and validate settings.yml text. Never throws for bad input: problems come back in
 * `errors` with file:line:col and the key path.
 */
export function parseSettings(text: string, file = "settings.yml"): SettingsValidation {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const warnings = doc.warnings.map((w) => `${at(w.pos[0])}: ${w.message}`);
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      warnings,
      errors: doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split("\n")[0]}`),
    };
  }
  let raw: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { value: undefined, warnings, errors: [`${file}: ${(err as Error).message}`] };
  }
  const parsed = schemasOf().settingsSchema.safeParse(raw);
  if (parsed.success) {
    const value = parsed.data;
    for (const [where, map] of [
      ["budget", value.budget],
      ["ceiling", value.ceiling],
    ] as const) {
      for (const [provider, limit] of Object.entries(map ?? {})) {
        if (typeof limit === "object" && limit.tokens === undefined) {
          const node = doc.getIn([where, provider], true);
          warnings.push(
            `${at(nodeOffset(node))}: ${where}.${provider}: only a USD limit is set; calls without a price are charged their USD estimate`,
          );
        }
      }
    }
    return { value, warnings, errors: [] };
  }
  const errors = parsed.error.issues.map((issue) => {
    const path = issue.path as PropertyKey[];
    if (issue.code === "unrecognized_keys") {
      return issue.keys
        .map((k) => {
          const node = findKeyNode(doc.getIn(path, true), k) ?? doc.getIn(path, true);
          return `${at(nodeOffset(node))}: ${keyPath([...path, k])}: unknown key${didYouMean(k, knownKeysAt(path))}`;
        })
        .join("\n");
    }
    const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
    return `${at(nodeOffset(node))}: ${keyPath(path)}: ${issue.message}`;
  });
  return { value: undefined, warnings, errors: errors.flatMap((e) => e.split("\n")) };
}

function nodeOffset(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

function findKeyNode(map: unknown, key: string): unknown {
  if (!isMap(map)) return undefined;
  for (const pair of map.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key;
  }
  return undefined;
}

export interface LoadedSettings {
  /** The validated settings; `{}` when the file does not exist. */
  settings: Settings;
  warnings: string[];
  path: string;
  found: boolean;
}

/**
 * Read `<home>/settings.yml` (home defaults to $BOTTLEKIT_HOME). A missing file is empty settings;
 * a file that cannot be read, parsed or validated throws E_SETTINGS listing every problem
 * (fail closed: budgets must not silently disappear because of a typo).
 */
export function loadSettings(home: string = bottlekitHome()): LoadedSettings {
  const path = join(home, "settings.yml");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return { settings: {}, warnings: [], path, found: false };
    throw new BudgetStoreError("E_SETTINGS", `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
      hint: "check the file's permissions",
    });
  }
  const { value, warnings, errors } = parseSettings(text, path);
  if (value === undefined) {
    throw new BudgetStoreError("E_SETTINGS", `invalid settings:\n${errors.join("\n")}`, {
      hint: "fix the keys named above; see the budget-store README for the settings.yml format",
    });
  }
  return { settings: value, warnings, path, found: true };
}

function toInput(
  scope: BudgetInput["scope"],
  key: string | undefined,
  provider: string,
  limit: SettingsLimit,
): BudgetInput {
  const base: BudgetInput = { scope, provider, source: "settings" };
  if (key !== undefined) base.key = key;
  if (typeof limit === "number") return { ...base, tokens: limit };
  const out: BudgetInput = { ...base };
  if (limit.tokens !== undefined) out.tokens = limit.tokens;
  if (limit.usd !== undefined) out.usd = limit.usd;
  if (limit.window !== undefined) out.window = limit.window;
  if (limit.policy !== undefined) out.policy = limit.policy;
  return out;
}

/** The budgets a settings file defines, all with source "settings". */
export function budgetsFromSettings(settings: Settings): BudgetInput[] {
  const out: BudgetInput[] = [];
  for (const [p, l] of Object.entries(settings.budget ?? {}))
    out.push(toInput("global", undefined, p, l));
  for (const [p, l] of Object.entries(settings.ceiling ?? {}))
    out.push(toInput("ceiling", undefined, p, l));
  for (const [bottle, s] of Object.entries(settings.bottles ?? {})) {
    for (const [p, l] of Object.entries(s.budget)) out.push(toInput("bottle", bottle, p, l));
  }
  for (const [agent, s] of Object.entries(settings.agents ?? {})) {
    for (const [p, l] of Object.entries(s.budget)) out.push(toInput("agent", agent, p, l));
  }
  return out;
}

/** Make the store reflect settings: replace the "settings" budgets and set the default policy. */
export async function applySettings(store: Store, settings: Settings): Promise<void> {
  await store.replaceBudgets("settings", budgetsFromSettings(settings));
  await store.setDefaultPolicy(settings.shutdown ?? ("cutoff" satisfies CutoffPolicy));
}
