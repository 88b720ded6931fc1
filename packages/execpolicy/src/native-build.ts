/**
 * The second half of loading a native YAML policy, without zod or yaml: a validated, normalised
 * policy (plain JSON, see `NormalizedNativePolicy`) is turned into a `Policy`, and its examples are
 * checked. `native-format.ts` produces the normalised form from YAML; the compiled-policy cache
 * (`policy-cache.ts`) stores it, so a cache hit never loads zod or yaml.
 */
import { checkExamples, type ParsedRulesFile, type PendingExamples } from "./codex-rules.ts";
import { type Decision, isDecision } from "./decision.ts";
import type { Diagnostic } from "./diagnostic.ts";
import {
  type NetworkProtocol,
  type PatternAlternative,
  type PatternPosition,
  Policy,
  type PrefixRule,
  type RuleException,
} from "./policy.ts";

/**
 * Version of the normalised form below and of what the loaders put in it. It is part of the cache
 * key (with the package version), so older cache entries are never read again. Bump it whenever the
 * shape changes or a loader would produce a different result for the same file (a Starlark builtin
 * fixed, a YAML rule interpreted differently): unreleased builds share the package version.
 */
export const NORMALIZED_FORMAT_VERSION = 3;

/** Line and column (1-based) inside the policy file; the file name is added when building. */
export interface NormalizedLocation {
  line: number;
  column: number;
}

export interface NormalizedExample {
  argv: string[];
  text: string;
}

export interface NormalizedException extends NormalizedLocation {
  /** Raw tokens (globs uncompiled) of the positions after the program. */
  rest: string[][];
  decision: Decision;
  justification?: string;
  maxArgs?: number;
}

export interface NormalizedRule extends NormalizedLocation {
  /** Program names (alternatives at the first position); never globs. */
  heads: string[];
  /** Raw tokens (globs uncompiled) of the positions after the program. */
  rest: string[][];
  decision: Decision;
  justification?: string;
  /** `true`: the known value-taking options of the program; a list: those options. */
  optionsAnywhere?: true | string[];
  maxArgs?: number;
  except: NormalizedException[];
  match: NormalizedExample[];
  notMatch: NormalizedExample[];
}

export interface NormalizedNetworkRule extends NormalizedLocation {
  host: string;
  protocol: NetworkProtocol;
  decision: "allow" | "prompt" | "deny";
  justification?: string;
}

/** A native policy file after YAML parsing, schema validation and every per-file check except examples. */
export interface NormalizedNativePolicy {
  default?: Decision;
  hostExecutables: [string, string[]][];
  rules: NormalizedRule[];
  network: NormalizedNetworkRule[];
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

/** A pattern token: a literal, or (with `*`, `?`, `[…]`; `\` escapes) an anchored glob. Throws on a bad glob. */
export function compileToken(token: string): PatternAlternative {
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

/**
 * Splits a pattern into its program names and the raw tokens of the later positions. Throws when
 * the program is a glob or a glob is malformed.
 */
export function normalizePattern(pattern: readonly (string | readonly string[])[]): {
  heads: string[];
  rest: string[][];
} {
  const positions = pattern.map((p) => (typeof p === "string" ? [p] : [...p]));
  const heads = (positions[0] ?? []).map((h) => {
    const c = compileToken(h);
    if (!("literal" in c))
      throw new Error(`the program (first token) cannot be a glob: ${JSON.stringify(h)}`);
    return c.literal;
  });
  const rest = positions.slice(1);
  for (const alts of rest) for (const t of alts) compileToken(t);
  return { heads, rest };
}

const compileRest = (rest: readonly string[][]): PatternPosition[] =>
  rest.map((alts) => alts.map(compileToken));

/**
 * Builds the policy of a normalised native file and checks its examples against its own rules
 * plus the host executables known so far (Codex's order). Throws only on a malformed input, which
 * `isNormalizedNativePolicy` and the normaliser rule out.
 */
export function buildNativePolicy(
  value: NormalizedNativePolicy,
  file: string,
  hostExecutablesSoFar?: ReadonlyMap<string, readonly string[]>,
): { policy: Policy; exampleFailures: Diagnostic[]; defaultDecision?: Decision | undefined } {
  const policy = new Policy();
  if (value.default) policy.defaultDecision = value.default;
  for (const [name, paths] of value.hostExecutables) policy.setHostExecutable(name, paths);
  const examples: PendingExamples[] = [];
  for (const r of value.rules) {
    const source = { file, line: r.line, column: r.column };
    const rest = compileRest(r.rest);
    const exceptions: RuleException[] = r.except.map((ex) => ({
      rest: compileRest(ex.rest),
      decision: ex.decision,
      justification: ex.justification,
      maxArgs: ex.maxArgs,
      source: { file, line: ex.line, column: ex.column },
    }));
    const rules: PrefixRule[] = r.heads.map((program) => ({
      program,
      rest,
      decision: r.decision,
      justification: r.justification,
      source,
      optionsAnywhere:
        r.optionsAnywhere === undefined
          ? undefined
          : {
              valueOptions: new Set(
                r.optionsAnywhere === true
                  ? (KNOWN_VALUE_OPTIONS[program] ?? [])
                  : r.optionsAnywhere,
              ),
            },
      maxArgs: r.maxArgs,
      exceptions: exceptions.length > 0 ? exceptions : undefined,
    }));
    for (const rule of rules) policy.addRule(rule);
    if (r.match.length > 0 || r.notMatch.length > 0)
      examples.push({ rules, match: r.match, notMatch: r.notMatch, source });
  }
  for (const n of value.network) {
    policy.networkRules.push({
      host: n.host,
      protocol: n.protocol,
      decision: n.decision,
      justification: n.justification,
      source: { file, line: n.line, column: n.column },
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

/** A token that `compileToken` reads back as exactly this literal (Codex tokens are never globs). */
const escapeLiteral = (token: string) => token.replace(/[\\*?[]/g, "\\$&");

/**
 * The normalised form of a loaded Codex `.rules` file, so the compiled-policy cache can skip the
 * Starlark evaluation too. Tokens are escaped (they are exact, never globs); the rules of one
 * `prefix_rule` call stay together, because their examples are checked against those rules only.
 */
export function normalizeRulesFile(parsed: ParsedRulesFile): NormalizedNativePolicy {
  const groupOf = new Map<PrefixRule, PendingExamples>();
  for (const ex of parsed.examples) for (const r of ex.rules) groupOf.set(r, ex);
  const out: NormalizedNativePolicy = {
    hostExecutables: [...parsed.policy.hostExecutables].map(([k, v]) => [k, [...v]]),
    rules: [],
    network: parsed.policy.networkRules.map((n) => {
      const rule: NormalizedNetworkRule = {
        line: n.source.line,
        column: n.source.column,
        host: n.host,
        protocol: n.protocol,
        decision: n.decision,
      };
      if (n.justification !== undefined) rule.justification = n.justification;
      return rule;
    }),
  };
  let last: { rule: PrefixRule; normalized: NormalizedRule } | undefined;
  for (const r of parsed.policy.rules()) {
    const group = groupOf.get(r);
    if (last && group !== undefined && groupOf.get(last.rule) === group) {
      // another head of the same prefix_rule call
      last.normalized.heads.push(r.program);
      last.rule = r;
      continue;
    }
    const normalized: NormalizedRule = {
      line: r.source.line,
      column: r.source.column,
      heads: [r.program],
      rest: r.rest.map((alts) =>
        alts.map((a) => {
          if (!("literal" in a)) throw new Error("a Codex rule has no globs");
          return escapeLiteral(a.literal);
        }),
      ),
      decision: r.decision,
      except: [],
      match: group ? group.match.map((m) => ({ argv: [...m.argv], text: m.text })) : [],
      notMatch: group ? group.notMatch.map((m) => ({ argv: [...m.argv], text: m.text })) : [],
    };
    if (r.justification !== undefined) normalized.justification = r.justification;
    out.rules.push(normalized);
    last = { rule: r, normalized };
  }
  return out;
}

// --- structural check of untrusted (cached) data: every field, every type, nothing extra ---

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const isPos = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
const isCount = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const compiles = (token: string): boolean => {
  try {
    compileToken(token);
    return true;
  } catch {
    return false;
  }
};
const isRest = (v: unknown): v is string[][] =>
  Array.isArray(v) && v.every((alts) => isStrList(alts) && alts.length > 0 && alts.every(compiles));
const optional = (o: Obj, key: string, check: (v: unknown) => boolean): boolean =>
  !(key in o) || check(o[key]);
const onlyKeys = (o: Obj, keys: readonly string[]): boolean =>
  Object.keys(o).every((k) => keys.includes(k));
const isJustification = (v: unknown): boolean => isStr(v) && v.trim() !== "";
const isLocation = (o: Obj): boolean => isPos(o.line) && isPos(o.column);
const isExampleList = (v: unknown): v is NormalizedExample[] =>
  Array.isArray(v) &&
  v.every(
    (e) =>
      isObj(e) &&
      onlyKeys(e, ["argv", "text"]) &&
      isStrList(e.argv) &&
      e.argv.length > 0 &&
      isStr(e.text),
  );

function isException(v: unknown): boolean {
  return (
    isObj(v) &&
    onlyKeys(v, ["line", "column", "rest", "decision", "justification", "maxArgs"]) &&
    isLocation(v) &&
    isRest(v.rest) &&
    isDecision(v.decision) &&
    optional(v, "justification", isJustification) &&
    optional(v, "maxArgs", isCount)
  );
}

function isRule(v: unknown): boolean {
  return (
    isObj(v) &&
    onlyKeys(v, [
      "line",
      "column",
      "heads",
      "rest",
      "decision",
      "justification",
      "optionsAnywhere",
      "maxArgs",
      "except",
      "match",
      "notMatch",
    ]) &&
    isLocation(v) &&
    isStrList(v.heads) &&
    v.heads.length > 0 &&
    isRest(v.rest) &&
    isDecision(v.decision) &&
    optional(v, "justification", isJustification) &&
    optional(v, "optionsAnywhere", (o) => o === true || isStrList(o)) &&
    optional(v, "maxArgs", isCount) &&
    Array.isArray(v.except) &&
    v.except.every(isException) &&
    isExampleList(v.match) &&
    isExampleList(v.notMatch)
  );
}

const PROTOCOLS: readonly unknown[] = ["http", "https", "socks5_tcp", "socks5_udp"];
const NETWORK_DECISIONS: readonly unknown[] = ["allow", "prompt", "deny"];

function isNetworkRule(v: unknown): boolean {
  return (
    isObj(v) &&
    onlyKeys(v, ["line", "column", "host", "protocol", "decision", "justification"]) &&
    isLocation(v) &&
    isStr(v.host) &&
    v.host !== "" &&
    PROTOCOLS.includes(v.protocol) &&
    NETWORK_DECISIONS.includes(v.decision) &&
    optional(v, "justification", isJustification)
  );
}

/** True when `v` has exactly the shape of a `NormalizedNativePolicy` (used on cache entries, which are not trusted). */
export function isNormalizedNativePolicy(v: unknown): v is NormalizedNativePolicy {
  return (
    isObj(v) &&
    onlyKeys(v, ["default", "hostExecutables", "rules", "network"]) &&
    optional(v, "default", isDecision) &&
    Array.isArray(v.hostExecutables) &&
    v.hostExecutables.every(
      (e) =>
        Array.isArray(e) &&
        e.length === 2 &&
        isStr(e[0]) &&
        !e[0].includes("/") &&
        isStrList(e[1]) &&
        e[1].every((p) => p.startsWith("/") && p.slice(p.lastIndexOf("/") + 1) === e[0]),
    ) &&
    Array.isArray(v.rules) &&
    v.rules.every(isRule) &&
    Array.isArray(v.network) &&
    v.network.every(isNetworkRule)
  );
}
