/**
 * bottlekit's native YAML policy format. Same rules as Codex plus what Codex lacks:
 * exceptions, options anywhere, argument globs and a maximum argument count.
 *
 * ```yaml
 * version: 1
 * default: prompt
 * rules:
 *   - pattern: [terraform]
 *     decision: prompt
 *     except:
 *       - pattern: [terraform, fmt]
 *         decision: allow
 *   - pattern: [git, push]
 *     decision: forbidden
 *     options_anywhere: true
 * ```
 */
import { suggest } from "@bottlekit/diagnostics";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import * as z from "zod";
import { normalizeNetworkHost } from "./codex-rules.ts";
import type { Decision } from "./decision.ts";
import type { Diagnostic } from "./diagnostic.ts";
import {
  buildNativePolicy,
  type NormalizedException,
  type NormalizedNativePolicy,
  type NormalizedNetworkRule,
  type NormalizedRule,
  normalizePattern,
} from "./native-build.ts";
import type { NetworkProtocol, Policy } from "./policy.ts";
import { shlexSplit } from "./shlex.ts";

export { KNOWN_VALUE_OPTIONS } from "./native-build.ts";

const decisionSchema = z.enum(["allow", "prompt", "forbidden"]);
const tokenSchema = z.string();
const positionSchema = z.union([
  tokenSchema,
  z.array(tokenSchema).min(1, "alternatives cannot be empty"),
]);
const patternSchema = z.array(positionSchema).min(1, "pattern cannot be empty");
const exampleSchema = z.union([z.string(), z.array(z.string()).min(1)]);
const justificationSchema = z
  .string()
  .refine((s) => s.trim() !== "", "justification cannot be empty");

const exceptionSchema = z.strictObject({
  pattern: patternSchema.describe(
    "Full pattern, starting with the rule's program; when it matches, its decision replaces the rule's.",
  ),
  decision: decisionSchema,
  justification: justificationSchema.optional(),
  max_args: z.number().int().nonnegative().optional(),
});

const ruleSchema = z.strictObject({
  pattern: patternSchema.describe(
    "Tokens from the program on. A token may be a glob (*, ?, [...]); a list gives alternatives.",
  ),
  decision: decisionSchema.default("allow"),
  justification: justificationSchema.optional(),
  options_anywhere: z
    .union([z.boolean(), z.array(z.string().startsWith("-"))])
    .optional()
    .describe(
      "Skip option tokens between pattern tokens. A list names the options that take a separate value.",
    ),
  max_args: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe("Only match when the command has at most this many arguments after the program."),
  except: z.array(exceptionSchema).optional(),
  match: z.array(exampleSchema).optional(),
  not_match: z.array(exampleSchema).optional(),
});

const networkSchema = z.strictObject({
  host: z.string(),
  protocol: z.enum(["http", "https", "https_connect", "http-connect", "socks5_tcp", "socks5_udp"]),
  decision: z.enum(["allow", "prompt", "deny", "forbidden"]),
  justification: justificationSchema.optional(),
});

/** The zod schema of a native policy file. */
export const policyFileSchema = z.strictObject({
  version: z.literal(1),
  default: decisionSchema
    .optional()
    .describe("Decision for commands no rule matches (default: prompt)."),
  rules: z.array(ruleSchema).default([]),
  host_executables: z.record(z.string(), z.array(z.string())).optional(),
  network: z.array(networkSchema).optional(),
});

export type PolicyFile = z.infer<typeof policyFileSchema>;

/** JSON Schema of the native policy format, generated from the zod schema. */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policyFileSchema, { io: "input" }) as Record<string, unknown>;
}

/** Line and column of a key path in the YAML document (1-based), or of the document start. */
function locate(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: readonly PropertyKey[],
): { line: number; col: number } {
  let node: unknown = doc.contents;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof key === "number") {
      const item = node.items[key];
      if (item === undefined) break;
      node = item;
    } else break;
  }
  const range = (node as { range?: [number, number, number] } | null)?.range;
  const p = lc.linePos(range ? range[0] : 0);
  return { line: p.line, col: p.col };
}

function pathString(path: readonly PropertyKey[]): string {
  return path
    .map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`))
    .join("")
    .replace(/^\./, "");
}

type Issue = z.core.$ZodIssue;

const KNOWN_KEYS: Record<string, readonly string[]> = {
  top: Object.keys(policyFileSchema.shape),
  rule: Object.keys(ruleSchema.shape),
  exception: Object.keys(exceptionSchema.shape),
  network: Object.keys(networkSchema.shape),
};

function keysAt(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return KNOWN_KEYS.top ?? [];
  if (path[0] === "rules" && path.length === 2) return KNOWN_KEYS.rule ?? [];
  if (path[0] === "rules" && path[2] === "except" && path.length === 4)
    return KNOWN_KEYS.exception ?? [];
  if (path[0] === "network" && path.length === 2) return KNOWN_KEYS.network ?? [];
  return [];
}

/** The known key closest to `key`, when it is close enough to be a typo (`@bottlekit/diagnostics`). */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  return suggest(key, known, 1)[0];
}

function issueMessage(issue: Issue): string {
  const where = issue.path.length > 0 ? `${pathString(issue.path)}: ` : "";
  if (issue.code === "unrecognized_keys") {
    const known = keysAt(issue.path);
    const parts = issue.keys.map((k) => {
      const guess = didYouMean(k, known);
      return guess ? `'${k}' (did you mean '${guess}'?)` : `'${k}'`;
    });
    return `${where}unknown key${issue.keys.length === 1 ? "" : "s"} ${parts.join(", ")}`;
  }
  return `${where}${issue.message}`;
}

function issueHint(issue: Issue): string | undefined {
  if (issue.code === "unrecognized_keys") {
    const known = keysAt(issue.path);
    return known.length > 0
      ? `allowed keys here: ${known.join(", ")}`
      : "see the JSON Schema (execpolicy schema)";
  }
  return undefined;
}

/**
 * Validates an already-parsed native policy document: `{ value, warnings, errors }` with
 * `"path: message"` entries (unknown keys get a "did you mean").
 */
export function validatePolicyFile(input: unknown): {
  value: PolicyFile | undefined;
  warnings: string[];
  errors: string[];
} {
  const parsed = policyFileSchema.safeParse(input);
  if (!parsed.success)
    return { value: undefined, warnings: [], errors: parsed.error.issues.map(issueMessage) };
  return { value: parsed.data, warnings: [], errors: [] };
}

/**
 * Parses and validates a native YAML policy file into its normalised form (plain JSON: what the
 * compiled-policy cache stores). Throws a Diagnostic on the first problem. Examples are split but
 * not checked: that depends on the host executables of earlier files, see `buildNativePolicy`.
 */
export function normalizeNativePolicy(text: string, file: string): NormalizedNativePolicy {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0] as (typeof doc.errors)[number];
    const p = lc.linePos(e.pos[0]);
    throw {
      file,
      line: p.line,
      column: p.col,
      message: `invalid YAML: ${e.message.split("\n")[0]}`,
    } satisfies Diagnostic;
  }
  const parsed = policyFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as (typeof parsed.error.issues)[number];
    const p = locate(doc, lc, issue.path);
    throw {
      file,
      line: p.line,
      column: p.col,
      message: issueMessage(issue),
      hint: issueHint(issue),
    } satisfies Diagnostic;
  }
  const value = parsed.data;
  const at = (path: PropertyKey[]) => {
    const p = locate(doc, lc, path);
    return { line: p.line, column: p.col };
  };
  const fail = (path: PropertyKey[], message: string, hint?: string): never => {
    const p = at(path);
    throw {
      file,
      line: p.line,
      column: p.column,
      message: `${pathString(path)}: ${message}`,
      hint,
    } satisfies Diagnostic;
  };
  const out: NormalizedNativePolicy = { hostExecutables: [], rules: [], network: [] };
  if (value.default) out.default = value.default;
  for (const [name, paths] of Object.entries(value.host_executables ?? {})) {
    if (name.includes("/")) fail(["host_executables", name], "must be a bare executable name");
    paths.forEach((path, i) => {
      if (!path.startsWith("/") || path.slice(path.lastIndexOf("/") + 1) !== name) {
        fail(
          ["host_executables", name, i],
          `${JSON.stringify(path)} must be an absolute path whose basename is ${JSON.stringify(name)}`,
        );
      }
    });
    out.hostExecutables.push([name, paths]);
  }
  for (const [i, r] of value.rules.entries()) {
    let compiled: { heads: string[]; rest: string[][] };
    try {
      compiled = normalizePattern(r.pattern);
    } catch (err) {
      return fail(["rules", i, "pattern"], (err as Error).message);
    }
    const except = (r.except ?? []).map((ex, j): NormalizedException => {
      let c: { heads: string[]; rest: string[][] };
      try {
        c = normalizePattern(ex.pattern);
      } catch (err) {
        return fail(["rules", i, "except", j, "pattern"], (err as Error).message);
      }
      if (!c.heads.every((h) => compiled.heads.includes(h))) {
        fail(
          ["rules", i, "except", j, "pattern"],
          `must start with the rule's program (${compiled.heads.join(" or ")})`,
          "an exception narrows its rule",
        );
      }
      const e: NormalizedException = {
        ...at(["rules", i, "except", j]),
        rest: c.rest,
        decision: ex.decision,
      };
      if (ex.justification !== undefined) e.justification = ex.justification;
      if (ex.max_args !== undefined) e.maxArgs = ex.max_args;
      return e;
    });
    const toExample = (key: "match" | "not_match") =>
      (r[key] ?? []).map((ex, j) => {
        if (typeof ex !== "string") return { argv: ex, text: ex.join(" ") };
        const argv = shlexSplit(ex);
        if (argv === undefined || argv.length === 0)
          return fail(["rules", i, key, j], `invalid or empty example ${JSON.stringify(ex)}`);
        return { argv, text: ex };
      });
    const rule: NormalizedRule = {
      ...at(["rules", i]),
      heads: compiled.heads,
      rest: compiled.rest,
      decision: r.decision,
      except,
      match: toExample("match"),
      notMatch: toExample("not_match"),
    };
    if (r.justification !== undefined) rule.justification = r.justification;
    if (r.options_anywhere !== undefined && r.options_anywhere !== false)
      rule.optionsAnywhere = r.options_anywhere;
    if (r.max_args !== undefined) rule.maxArgs = r.max_args;
    out.rules.push(rule);
  }
  for (const [i, n] of (value.network ?? []).entries()) {
    let host: string;
    try {
      host = normalizeNetworkHost(n.host);
    } catch (err) {
      return fail(["network", i, "host"], (err as Error).message);
    }
    const protocol: NetworkProtocol =
      n.protocol === "https_connect" || n.protocol === "http-connect" ? "https" : n.protocol;
    const rule: NormalizedNetworkRule = {
      ...at(["network", i]),
      host,
      protocol,
      decision: n.decision === "forbidden" ? "deny" : n.decision,
    };
    if (n.justification !== undefined) rule.justification = n.justification;
    out.network.push(rule);
  }
  return out;
}

/** Parses and validates a native YAML policy file. Throws a Diagnostic on the first problem. */
export function parseNativePolicy(
  text: string,
  file: string,
  hostExecutablesSoFar?: ReadonlyMap<string, readonly string[]>,
): { policy: Policy; exampleFailures: Diagnostic[]; defaultDecision?: Decision | undefined } {
  return buildNativePolicy(normalizeNativePolicy(text, file), file, hostExecutablesSoFar);
}
