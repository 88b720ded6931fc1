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
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { checkExamples, normalizeNetworkHost, type PendingExamples } from "./codex-rules.ts";
import type { Decision } from "./decision.ts";
import type { Diagnostic } from "./diagnostic.ts";
import {
  type NetworkProtocol,
  type PatternAlternative,
  type PatternPosition,
  Policy,
  type PrefixRule,
  type RuleException,
  type SourceLocation,
} from "./policy.ts";
import { shlexSplit } from "./shlex.ts";

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

/** Options that take a separate value, for `options_anywhere: true`. */
export const KNOWN_VALUE_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  git: [
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--config-env",
    "--exec-path",
    "--super-prefix",
  ],
  kubectl: [
    "-n",
    "--namespace",
    "--context",
    "--cluster",
    "--kubeconfig",
    "-s",
    "--server",
    "--user",
    "--token",
    "--as",
    "-l",
    "--selector",
  ],
  docker: [
    "-H",
    "--host",
    "--context",
    "-c",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
  ],
  helm: ["-n", "--namespace", "--kube-context", "--kubeconfig", "--repository-config"],
  npm: ["--prefix", "-w", "--workspace", "--registry", "--userconfig"],
  pnpm: ["-C", "--dir", "--filter", "-F", "-w", "--workspace"],
  cargo: ["--manifest-path", "-Z", "--config", "-C", "--color"],
  terraform: [],
  tofu: [],
  gh: ["-R", "--repo"],
  aws: ["--profile", "--region", "--output", "--endpoint-url"],
  gcloud: ["--project", "--account", "--configuration"],
};

const GLOB_CHARS = /[*?[]/;

function compileToken(token: string): PatternAlternative {
  if (!GLOB_CHARS.test(token) && !token.includes("\\")) return { literal: token };
  let re = "^";
  let literal = "";
  let isGlob = false;
  for (let i = 0; i < token.length; i++) {
    const c = token[i] as string;
    if (c === "\\" && i + 1 < token.length) {
      const n = token[++i] as string;
      literal += n;
      re += n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    } else if (c === "*") {
      isGlob = true;
      re += "[\\s\\S]*";
    } else if (c === "?") {
      isGlob = true;
      re += "[\\s\\S]";
    } else if (c === "[") {
      const end = token.indexOf("]", i + 2);
      if (end < 0)
        throw new Error(`unterminated '[' in glob ${JSON.stringify(token)} (escape it as \\[)`);
      let cls = token.slice(i + 1, end);
      const negate = cls.startsWith("!") || cls.startsWith("^");
      if (negate) cls = cls.slice(1);
      re += `[${negate ? "^" : ""}${cls.replace(/[\\\]^]/g, "\\$&")}]`;
      isGlob = true;
      i = end;
    } else {
      literal += c;
      re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
  }
  if (!isGlob) return { literal };
  // Token globs are anchored, linear-time regexes (no nested quantifiers).
  return { glob: token, re: new RegExp(`${re}$`, "u") };
}

function compilePositions(
  pattern: readonly (string | readonly string[])[],
  allowGlobInHead: boolean,
): { heads: string[]; rest: PatternPosition[] } {
  const positions = pattern.map((p) => (typeof p === "string" ? [p] : [...p]));
  const heads = (positions[0] ?? []).map((h) => {
    const c = compileToken(h);
    if (!("literal" in c) && !allowGlobInHead)
      throw new Error(`the program (first token) cannot be a glob: ${JSON.stringify(h)}`);
    return "literal" in c ? c.literal : h;
  });
  const rest = positions.slice(1).map((alts) => alts.map(compileToken));
  return { heads, rest };
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

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(
        cur + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/** The known key closest to `key`, when it is close enough to be a typo. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3))
    ? best
    : undefined;
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

/** Parses and validates a native YAML policy file. Throws a Diagnostic on the first problem. */
export function parseNativePolicy(
  text: string,
  file: string,
  hostExecutablesSoFar?: ReadonlyMap<string, readonly string[]>,
): { policy: Policy; exampleFailures: Diagnostic[]; defaultDecision?: Decision | undefined } {
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
  const policy = new Policy();
  if (value.default) policy.defaultDecision = value.default;
  const fail = (path: PropertyKey[], message: string, hint?: string): never => {
    const p = locate(doc, lc, path);
    throw {
      file,
      line: p.line,
      column: p.col,
      message: `${pathString(path)}: ${message}`,
      hint,
    } satisfies Diagnostic;
  };
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
    policy.setHostExecutable(name, paths);
  }
  const examples: PendingExamples[] = [];
  for (const [i, r] of value.rules.entries()) {
    const pos = locate(doc, lc, ["rules", i]);
    const source: SourceLocation = { file, line: pos.line, column: pos.col };
    let compiled: { heads: string[]; rest: PatternPosition[] };
    try {
      compiled = compilePositions(r.pattern, false);
    } catch (err) {
      return fail(["rules", i, "pattern"], (err as Error).message);
    }
    const exceptions: RuleException[] = (r.except ?? []).map((ex, j) => {
      let c: { heads: string[]; rest: PatternPosition[] };
      try {
        c = compilePositions(ex.pattern, false);
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
      const epos = locate(doc, lc, ["rules", i, "except", j]);
      return {
        rest: c.rest,
        decision: ex.decision,
        justification: ex.justification,
        maxArgs: ex.max_args,
        source: { file, line: epos.line, column: epos.col },
      };
    });
    const rules: PrefixRule[] = compiled.heads.map((program) => {
      const optionsAnywhere =
        r.options_anywhere === undefined || r.options_anywhere === false
          ? undefined
          : {
              valueOptions: new Set(
                r.options_anywhere === true
                  ? (KNOWN_VALUE_OPTIONS[program] ?? [])
                  : r.options_anywhere,
              ),
            };
      return {
        program,
        rest: compiled.rest,
        decision: r.decision,
        justification: r.justification,
        source,
        optionsAnywhere,
        maxArgs: r.max_args,
        exceptions: exceptions.length > 0 ? exceptions : undefined,
      };
    });
    for (const rule of rules) policy.addRule(rule);
    const toExample = (key: "match" | "not_match") =>
      (r[key] ?? []).map((ex, j) => {
        if (typeof ex !== "string") return { argv: ex, text: ex.join(" ") };
        const argv = shlexSplit(ex);
        if (argv === undefined || argv.length === 0)
          return fail(["rules", i, key, j], `invalid or empty example ${JSON.stringify(ex)}`);
        return { argv, text: ex };
      });
    const match = toExample("match");
    const notMatch = toExample("not_match");
    if (match.length > 0 || notMatch.length > 0) examples.push({ rules, match, notMatch, source });
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
    const pos = locate(doc, lc, ["network", i]);
    policy.networkRules.push({
      host,
      protocol,
      decision: n.decision === "forbidden" ? "deny" : n.decision,
      justification: n.justification,
      source: { file, line: pos.line, column: pos.col },
    });
  }
  const hostExecutables = new Map(hostExecutablesSoFar);
  for (const [k, v] of policy.hostExecutables) hostExecutables.set(k, v);
  return {
    policy,
    exampleFailures: checkExamples(examples, hostExecutables),
    defaultDecision: value.default,
  };
}
