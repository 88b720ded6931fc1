import type { z } from "zod";
import type { ManifestErrorCode, ManifestIssue } from "./errors.ts";
import { type KeyPath, type ParsedFile, parseManifestText, pathToString } from "./frontmatter.ts";
import { didYouMean, ENV_NAME_PATTERN } from "./names.ts";
import {
  type AgentFrontmatter,
  agentSchemaOf,
  type BottleFrontmatter,
  bottleSchemaOf,
  IGNORED_AGENT_KEYS,
} from "./schema.ts";

export type ManifestKind = "bottle" | "agent";

/** Keys bot-bottle had and bottlekit removed on purpose, with the migration to apply. */
const REMOVED_TOP_LEVEL: Readonly<Record<string, { message: string; hint: string }>> = {
  git: {
    message: "`git` was removed (bot-bottle renamed it `git-gate`, and bottlekit has no git gate)",
    hint: "reach git hosts through an `egress.routes` entry with `auth`, and set the commit author with `git_identity: {name, email}`",
  },
  "git-gate": {
    message: "`git-gate` is a bot-bottle key; bottlekit has no git gate",
    hint: "reach git hosts through an `egress.routes` entry with `auth`, and set the commit author with `git_identity: {name, email}`",
  },
  git_user: {
    message: "`git_user` was removed",
    hint: "use `git_identity: {name, email}`",
  },
  ssh: {
    message: "`ssh` was removed: bottles do not forward SSH keys or agents",
    hint: "use HTTPS remotes with an `egress.routes` entry whose `auth.token_ref` names the host variable holding the token",
  },
  runtime: {
    message: "`runtime` was removed: the sandbox backend is chosen when the agent is launched",
    hint: "delete `runtime`; put filesystem rules under `sandbox.filesystem` (read_only, read_write, deny_read)",
  },
  path_allowlist: {
    message: "`path_allowlist` was replaced by route `matches`",
    hint: "move each path into `egress.routes[].matches: [{paths: [{type: prefix, value: /path}]}]`",
  },
};

const REMOVED_IN_ROUTE: Readonly<Record<string, { message: string; hint: string }>> = {
  role: {
    message: "route `role` is no longer supported; any value is rejected",
    hint: "delete `role`; attach a credential with `auth: {scheme: Bearer, token_ref: HOST_VAR}`",
  },
  path_allowlist: REMOVED_TOP_LEVEL["path_allowlist"]!,
};

export interface ValidationResult<T> {
  /** The validated frontmatter; undefined when there is any error. */
  value: T | undefined;
  /** Errors and warnings, each with file, line:col and key path. */
  issues: ManifestIssue[];
}

type AnySchema = z.ZodType;

/** The keys an object schema accepts at `path` (used for "did you mean"). */
function keysAt(schema: AnySchema, path: KeyPath): string[] {
  let node: unknown = schema;
  const unwrap = (n: unknown): unknown => {
    let cur = n;
    for (let i = 0; i < 10; i++) {
      const def = (cur as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
      if (!def) return cur;
      if (def["type"] === "optional" || def["type"] === "default" || def["type"] === "nullable") {
        cur = def["innerType"];
      } else if (def["type"] === "pipe") {
        cur = def["in"];
      } else return cur;
    }
    return cur;
  };
  for (const seg of path) {
    node = unwrap(node);
    const def = (node as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
    if (!def) return [];
    if (def["type"] === "object") {
      const shape = def["shape"] as Record<string, unknown>;
      node = Object.hasOwn(shape, String(seg)) ? shape[String(seg)] : undefined;
    } else if (def["type"] === "array") {
      node = def["element"];
    } else if (def["type"] === "record") {
      node = def["valueType"];
    } else if (def["type"] === "union") {
      const options = def["options"] as unknown[];
      node = options.find((o) => {
        const d = (unwrap(o) as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
        return d?.["type"] === (typeof seg === "number" ? "array" : "object");
      });
    } else return [];
  }
  node = unwrap(node);
  const def = (node as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
  return def?.["type"] === "object" ? Object.keys(def["shape"] as Record<string, unknown>) : [];
}

function valueAt(data: unknown, path: KeyPath): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(truncate(value))}`;
  return `${typeof value} ${String(value)}`;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Validates parsed frontmatter against the bottle or agent schema. Reports every problem, not
 * just the first: removed keys with their migration, unknown keys with "did you mean", type and
 * value errors, malformed `${...}` env references and duplicate route hosts.
 */
export function validateFrontmatter(
  parsed: ParsedFile,
  kind: "bottle",
): ValidationResult<BottleFrontmatter>;
export function validateFrontmatter(
  parsed: ParsedFile,
  kind: "agent",
): ValidationResult<AgentFrontmatter>;
export function validateFrontmatter(
  parsed: ParsedFile,
  kind: ManifestKind,
): ValidationResult<BottleFrontmatter | AgentFrontmatter>;
export function validateFrontmatter(
  parsed: ParsedFile,
  kind: ManifestKind,
): ValidationResult<BottleFrontmatter | AgentFrontmatter> {
  const issues: ManifestIssue[] = [...parsed.issues];
  if (parsed.data === undefined) return { value: undefined, issues };
  const data = parsed.data;
  const file = parsed.file;
  const seen = new Set<string>();
  const push = (
    code: ManifestErrorCode,
    path: KeyPath,
    message: string,
    hint: string | undefined,
    at: "key" | "value" = "value",
    severity: "error" | "warning" = "error",
  ) => {
    const p = pathToString(path);
    const dedupe = `${code}|${p}|${message}`;
    if (seen.has(dedupe)) return;
    seen.add(dedupe);
    const pos = parsed.locate(path, at);
    const issue: ManifestIssue =
      hint === undefined
        ? { code, severity, file, ...pos, path: p, message }
        : { code, severity, file, ...pos, path: p, message, hint };
    issues.push(issue);
  };
  const schema: AnySchema = kind === "bottle" ? bottleSchemaOf() : agentSchemaOf();
  const removed = new Set<string>();

  // 1. Removed bot-bottle keys, with their migration message.
  if (isRecord(data)) {
    for (const key of Object.keys(data)) {
      const r = Object.hasOwn(REMOVED_TOP_LEVEL, key) ? REMOVED_TOP_LEVEL[key] : undefined;
      if (r) {
        removed.add(pathToString([key]));
        push("E_REMOVED_KEY", [key], r.message, r.hint, "key");
      }
    }
    const egress = data["egress"];
    const routes = isRecord(egress) ? egress["routes"] : undefined;
    if (Array.isArray(routes)) {
      routes.forEach((route, i) => {
        if (!isRecord(route)) return;
        for (const key of Object.keys(route)) {
          const r = Object.hasOwn(REMOVED_IN_ROUTE, key) ? REMOVED_IN_ROUTE[key] : undefined;
          if (r) {
            const path = ["egress", "routes", i, key];
            removed.add(pathToString(path));
            push("E_REMOVED_KEY", path, r.message, r.hint, "key");
          }
        }
      });
    }
  }

  // 2. The schema.
  const result = schema.safeParse(data);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map((p) => (typeof p === "number" ? p : String(p)));
      if (issue.code === "unrecognized_keys") {
        const allowed = keysAt(schema, path);
        for (const key of issue.keys) {
          const keyPath = [...path, key];
          if (removed.has(pathToString(keyPath))) continue;
          const near = didYouMean(key, allowed);
          push(
            "E_UNKNOWN_KEY",
            keyPath,
            near ? `unknown key \`${key}\`; did you mean \`${near}\`?` : `unknown key \`${key}\``,
            near
              ? `rename it to \`${near}\``
              : `remove it; allowed keys here: ${allowed.join(", ")}`,
            "key",
          );
        }
        continue;
      }
      const actual = valueAt(data, path);
      const last = path[path.length - 1];
      if (issue.code === "invalid_type" && actual === undefined) {
        push(
          "E_SCHEMA",
          path,
          `required key \`${String(last)}\` is missing`,
          kind === "agent" && pathToString(path) === "bottle"
            ? "add `bottle: <name>` naming a bottle in $BOTTLEKIT_HOME/bottles/"
            : `add \`${String(last)}\``,
          "value",
        );
        continue;
      }
      if (issue.code === "invalid_union" || issue.code === "invalid_type") {
        const p = pathToString(path);
        if (p === "extends") {
          push(
            "E_SCHEMA",
            path,
            `must be a bottle name or a list of bottle names, not ${describe(actual)}`,
            "write `extends: base` or `extends: [base, network]`",
          );
          continue;
        }
        if (path[0] === "env" && path.length === 2) {
          push(
            "E_SCHEMA",
            path,
            `env value must be text, not ${describe(actual)}`,
            'quote the value, use "?" to ask at launch or "${HOST_VAR}" to copy from the host',
          );
          continue;
        }
        if (issue.code === "invalid_type") {
          push(
            "E_SCHEMA",
            path,
            `must be ${article(issue.expected)}, not ${describe(actual)}`,
            `write ${article(issue.expected)} here`,
          );
          continue;
        }
        if (typeof last === "string" && last.endsWith("_detectors")) {
          push(
            "E_SCHEMA",
            path,
            `must be a list of detector names or \`false\`, not ${describe(actual)}`,
            "omit it to run every detector, list the ones to run, or write `false` for none",
          );
          continue;
        }
        push("E_SCHEMA", path, `has the wrong shape: ${describe(actual)}`, undefined);
        continue;
      }
      if (issue.code === "too_small" || issue.code === "too_big") {
        const small = issue.code === "too_small";
        const bound = small ? issue.minimum : issue.maximum;
        const inclusive = issue.inclusive !== false;
        const what =
          issue.origin === "array"
            ? small
              ? `must have at least ${String(bound)} item(s)`
              : `must have at most ${String(bound)} items`
            : issue.origin === "string"
              ? small
                ? "must not be empty"
                : `must be at most ${String(bound)} characters`
              : `must be ${small ? (inclusive ? "at least" : "greater than") : inclusive ? "at most" : "less than"} ${String(bound)}`;
        push("E_SCHEMA", path, `${what} (got ${describe(actual)})`, undefined);
        continue;
      }
      if (issue.code === "invalid_value") {
        const options = issue.values.map((v) => String(v));
        const near = typeof actual === "string" ? didYouMean(actual, options) : undefined;
        push(
          "E_SCHEMA",
          path,
          `${describe(actual)} is not allowed; expected one of: ${options.join(", ")}`,
          near ? `did you mean \`${near}\`?` : undefined,
        );
        continue;
      }
      if (issue.code === "invalid_key") {
        const key = issue.path.length > 0 ? String(last) : "";
        push(
          "E_SCHEMA",
          path,
          `key \`${key}\` ${issue.issues[0]?.message ?? "is not allowed"}`,
          undefined,
          "key",
        );
        continue;
      }
      const msg = issue.message.startsWith("Invalid input") ? `is invalid` : issue.message;
      const isName = msg.includes("^[a-z][a-z0-9-]*$");
      const got =
        issue.code === "custom" && actual !== null && typeof actual === "object"
          ? ""
          : ` (got ${describe(actual)})`;
      push(
        isName ? "E_NAME" : "E_SCHEMA",
        path,
        `${msg}${got}`,
        isName
          ? "names are lower case letters, digits and dashes, starting with a letter"
          : undefined,
      );
    }
  }

  // 3. Checks the schema cannot express.
  if (isRecord(data)) {
    const env = data["env"];
    if (isRecord(env)) {
      if (Object.hasOwn(env, "__proto__")) {
        push(
          "E_SCHEMA",
          ["env", "__proto__"],
          "`__proto__` cannot be used as an environment variable name",
          "rename the variable",
          "key",
        );
      }
      for (const [name, raw] of Object.entries(env)) {
        if (typeof raw !== "string") continue;
        const problem = envValueProblem(raw);
        if (problem) push("E_SCHEMA", ["env", name], problem.message, problem.hint);
      }
    }
    const egress = data["egress"];
    const routes = isRecord(egress) ? egress["routes"] : undefined;
    if (Array.isArray(routes)) {
      const firstAt = new Map<string, number>();
      routes.forEach((route, i) => {
        if (!isRecord(route) || typeof route["host"] !== "string") return;
        const key = routeKeyOf(route["host"], route["port"]);
        const prev = firstAt.get(key);
        if (prev === undefined) firstAt.set(key, i);
        else
          push(
            "E_SCHEMA",
            ["egress", "routes", i, "host"],
            `duplicate route for ${key} (first declared at egress.routes[${prev}])`,
            "merge both into one route: put every allowed method and path in its `matches` list",
          );
      });
    }
    if (kind === "agent") {
      for (const key of IGNORED_AGENT_KEYS) {
        if (key in data) {
          push(
            "W_IGNORED_KEY",
            [key],
            `\`${key}\` is a Claude Code subagent key and is ignored by bottlekit`,
            key === "name" ? "the agent's name is its file name" : undefined,
            "key",
            "warning",
          );
        }
      }
    }
  }

  // Parse problems first, then the rest in file order.
  const parseCount = parsed.issues.length;
  const rest = issues.slice(parseCount).sort((a, b) => a.line - b.line || a.col - b.col);
  issues.splice(parseCount, issues.length - parseCount, ...rest);
  const hasError = issues.some((i) => i.severity === "error");
  return {
    value: hasError || !result.success ? undefined : (result.data as BottleFrontmatter),
    issues,
  };
}

/** Key under which routes merge: the host, plus the port when one is given. */
export function routeKeyOf(host: string, port: unknown): string {
  return typeof port === "number" ? `${host}:${port}` : host;
}

function article(expected: string): string {
  const word = expected === "object" ? "mapping" : expected === "array" ? "list" : expected;
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/** Checks the `${...}` form of an env value; `undefined` when the value is fine. */
export function envValueProblem(raw: string): { message: string; hint: string } | undefined {
  if (!raw.includes("${")) return undefined;
  const m = /^\$\{([^}]*)\}$/.exec(raw);
  if (!m) {
    return {
      message: "`${...}` must be the whole value; text around a host variable is not supported",
      hint: 'write only "${HOST_VAR}" and build the larger string inside the agent',
    };
  }
  const name = m[1] ?? "";
  if (!ENV_NAME_PATTERN.test(name)) {
    return {
      message: `\`\${${truncate(name)}}\` does not name an environment variable`,
      hint: 'use "${HOST_VAR}" with letters, digits and underscores',
    };
  }
  return undefined;
}

export interface TextValidation<T> {
  /** The validated frontmatter; undefined when there is any error. */
  value: T | undefined;
  /** The markdown body (prompt or notes). */
  body: string;
  /** `"line:col path: message"` entries. */
  warnings: string[];
  errors: string[];
  /** The same problems as structured issues. */
  issues: ManifestIssue[];
}

/**
 * Validates one manifest's text without touching the filesystem (editors, pre-commit hooks).
 * `extends` and `bottle` references are not resolved here; `validatePaths` does that.
 */
export function validateManifestText(
  text: string,
  kind: "bottle",
  file?: string,
): TextValidation<BottleFrontmatter>;
export function validateManifestText(
  text: string,
  kind: "agent",
  file?: string,
): TextValidation<AgentFrontmatter>;
export function validateManifestText(
  text: string,
  kind: ManifestKind,
  file = "<input>",
): TextValidation<BottleFrontmatter | AgentFrontmatter> {
  const parsed = parseManifestText(file, text);
  const { value, issues } = validateFrontmatter(parsed, kind);
  const line = (i: ManifestIssue) =>
    `${i.line}:${i.col} ${i.path === "" ? "" : `${i.path}: `}${i.message}`;
  return {
    value,
    body: parsed.body,
    warnings: issues.filter((i) => i.severity === "warning").map(line),
    errors: issues.filter((i) => i.severity === "error").map(line),
    issues,
  };
}
