/**
 * The policy model and the argv matcher.
 *
 * Rules are indexed by their first token (O(1) lookup); a lookup then compares tokens linearly
 * over that program's rules only, so matching is O(rules for argv[0] × pattern length), independent
 * of the total policy size. Semantics follow Codex exactly for plain prefix rules: exact token
 * equality, alternatives per position, command at least as long as the pattern, every match
 * reported, strictest decision wins. Native-format extras (globs, options anywhere, max args,
 * exceptions) only apply to rules that ask for them.
 */
import { type Decision, stricter } from "./decision.ts";

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** One alternative at a pattern position: a literal token or (native format) a glob. */
export type PatternAlternative =
  | { readonly literal: string }
  | { readonly glob: string; readonly re: RegExp };

/** The alternatives accepted at one position. */
export type PatternPosition = readonly PatternAlternative[];

export interface RuleException {
  /** Positions after the program, like `PrefixRule.rest`. */
  readonly rest: readonly PatternPosition[];
  readonly decision: Decision;
  readonly justification?: string | undefined;
  readonly maxArgs?: number | undefined;
  readonly source: SourceLocation;
}

export interface PrefixRule {
  /** The first token; rules are indexed by it. */
  readonly program: string;
  /** Positions after the program. */
  readonly rest: readonly PatternPosition[];
  readonly decision: Decision;
  readonly justification?: string | undefined;
  readonly source: SourceLocation;
  /** Native format: skip option tokens between pattern positions. Values are options that take a separate argument. */
  readonly optionsAnywhere?: { readonly valueOptions: ReadonlySet<string> } | undefined;
  /** Native format: the rule only matches when the command has at most this many arguments after the program. */
  readonly maxArgs?: number | undefined;
  /** Native format: narrower patterns that replace this rule's decision when they match. */
  readonly exceptions?: readonly RuleException[] | undefined;
}

export type NetworkProtocol = "http" | "https" | "socks5_tcp" | "socks5_udp";

export interface NetworkRule {
  readonly host: string;
  readonly protocol: NetworkProtocol;
  readonly decision: "allow" | "prompt" | "deny";
  readonly justification?: string | undefined;
  readonly source: SourceLocation;
}

/** One rule that matched a command. */
export interface RuleMatch {
  readonly rule: PrefixRule;
  /** The command tokens the pattern matched (with the basename in first place after host-executable resolution). */
  readonly matchedPrefix: readonly string[];
  /** The decision this match contributes (an exception's decision when one applied). */
  readonly decision: Decision;
  readonly justification?: string | undefined;
  /** The absolute program path when the match came from host-executable resolution. */
  readonly resolvedProgram?: string | undefined;
  /** The exception that replaced the rule's decision, if any. */
  readonly exception?: RuleException | undefined;
  /**
   * False when the match depends on a token whose value is unknown before run time (an expansion
   * such as `$X` in a shell script). Uncertain matches never allow; the checker raises them to prompt.
   */
  readonly certain: boolean;
}

export interface MatchOptions {
  /** Retry absolute or relative program paths as their basename when nothing matched exactly (Codex `--resolve-host-executables`). */
  resolveHostExecutables?: boolean;
  /** Directory relative program paths are resolved against. Default: `process.cwd()`. */
  cwd?: string;
  /** Home directory for `~` in program paths. Default: `$HOME`. */
  home?: string;
  /**
   * Marks tokens whose value is not known (shell expansions). Such a token never equals a
   * literal, but a rule that could match it is reported with `certain: false`.
   */
  dynamic?: readonly boolean[];
}

type Tri = 0 | 1 | 2; // no, maybe, yes

function altMatches(alts: PatternPosition, token: string): boolean {
  for (const a of alts) {
    if ("literal" in a ? a.literal === token : a.re.test(token)) return true;
  }
  return false;
}

/** Exact positional prefix match (Codex semantics), optionally with max args. */
function matchPositional(
  rest: readonly PatternPosition[],
  maxArgs: number | undefined,
  argv: readonly string[],
  dyn: readonly boolean[] | undefined,
): Tri {
  if (argv.length - 1 < rest.length) return 0;
  let result: Tri = 2;
  for (let i = 0; i < rest.length; i++) {
    if (dyn?.[i + 1]) {
      result = 1;
      continue;
    }
    if (!altMatches(rest[i] as PatternPosition, argv[i + 1] as string)) return 0;
  }
  if (maxArgs !== undefined && argv.length - 1 > maxArgs) {
    if (!dyn?.some(Boolean)) return 0;
    result = 1;
  }
  return result;
}

function isOption(token: string): boolean {
  return token.length > 1 && token.startsWith("-") && token !== "--";
}

/**
 * Prefix match that skips option tokens between positions. Deterministic for literal argv
 * (a token that matches the next position is taken, otherwise an option is skipped), so linear;
 * unknown tokens explore both branches, bounded by the pattern length.
 */
function matchOptionsAnywhere(
  rule: { rest: readonly PatternPosition[]; maxArgs?: number | undefined },
  valueOptions: ReadonlySet<string>,
  argv: readonly string[],
  dyn: readonly boolean[] | undefined,
  taken: number[],
): Tri {
  const rest = rule.rest;
  let budget = 4096;
  const walk = (pi: number, ai: number, optionsOpen: boolean, uncertain: boolean): Tri => {
    if (--budget < 0) return 1;
    if (pi === rest.length) return uncertain ? 1 : 2;
    if (ai >= argv.length) return 0;
    const token = argv[ai] as string;
    if (dyn?.[ai]) {
      // unknown token: it may be the pattern token, an option, or nothing at all
      taken.push(ai);
      const a = walk(pi + 1, ai + 1, optionsOpen, true);
      if (a !== 0) return 1;
      taken.pop();
      return walk(pi, ai + 1, optionsOpen, true) !== 0 ? 1 : 0;
    }
    if (altMatches(rest[pi] as PatternPosition, token)) {
      taken.push(ai);
      const r = walk(pi + 1, ai + 1, optionsOpen, uncertain);
      if (r !== 0) return r;
      taken.pop();
    }
    if (optionsOpen && token === "--") return walk(pi, ai + 1, false, uncertain);
    if (optionsOpen && isOption(token)) {
      const takesValue = !token.includes("=") && valueOptions.has(token);
      return walk(pi, ai + (takesValue ? 2 : 1), optionsOpen, uncertain);
    }
    return 0;
  };
  const r = walk(0, 1, true, false);
  if (r === 0) return 0;
  if (rule.maxArgs !== undefined && argv.length - 1 > rule.maxArgs)
    return dyn?.some(Boolean) ? 1 : 0;
  return r;
}

function matchRest(
  rule: { rest: readonly PatternPosition[]; maxArgs?: number | undefined },
  options: PrefixRule["optionsAnywhere"],
  argv: readonly string[],
  dyn: readonly boolean[] | undefined,
): { tri: Tri; taken?: number[] } {
  if (options === undefined) return { tri: matchPositional(rule.rest, rule.maxArgs, argv, dyn) };
  const taken: number[] = [];
  const tri = matchOptionsAnywhere(rule, options.valueOptions, argv, dyn, taken);
  return { tri, taken };
}

/** Lexically normalizes a program path the way Codex absolutizes it (`~`, relative to cwd, `.`/`..`). */
export function absolutizeProgram(program: string, cwd: string, home: string | undefined): string {
  let p = program;
  if ((p === "~" || p.startsWith("~/")) && home) p = home + p.slice(1);
  if (!p.startsWith("/")) p = `${cwd}/${p}`;
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join("/")}`;
}

/** Rules compared by lookups so far: counted work, read by the tests (not public API). */
export const matchWork = { rules: 0 };

export class Policy {
  private readonly index = new Map<string, PrefixRule[]>();
  readonly hostExecutables = new Map<string, readonly string[]>();
  readonly networkRules: NetworkRule[] = [];
  /** Decision for commands no rule matched. */
  defaultDecision: Decision = "prompt";
  private readonly all: PrefixRule[] = [];

  get size(): number {
    return this.all.length;
  }

  /** All prefix rules in load order. */
  rules(): readonly PrefixRule[] {
    return this.all;
  }

  addRule(rule: PrefixRule): void {
    this.all.push(rule);
    const list = this.index.get(rule.program);
    if (list) list.push(rule);
    else this.index.set(rule.program, [rule]);
  }

  /** Last definition for a name wins (Codex). */
  setHostExecutable(name: string, paths: readonly string[]): void {
    this.hostExecutables.set(name, paths);
  }

  /** Adds every rule, host executable and network rule of `other`, in order. */
  merge(other: Policy): void {
    for (const r of other.rules()) this.addRule(r);
    for (const [k, v] of other.hostExecutables) this.setHostExecutable(k, v);
    this.networkRules.push(...other.networkRules);
  }

  /** Every rule that matches `argv`, in load order. */
  match(argv: readonly string[], options: MatchOptions = {}): RuleMatch[] {
    const program = argv[0];
    if (program === undefined) return [];
    const dyn = options.dynamic;
    if (dyn?.[0]) return [];
    const exact = this.matchUnder(program, argv, dyn, undefined);
    if (exact.length > 0 || !options.resolveHostExecutables) return exact;
    const resolved = absolutizeProgram(
      program,
      options.cwd ?? process.cwd(),
      options.home ?? process.env.HOME,
    );
    const base = resolved.slice(resolved.lastIndexOf("/") + 1);
    if (base === "" || base === program) return [];
    const allowed = this.hostExecutables.get(base);
    if (allowed !== undefined && !allowed.includes(resolved)) return [];
    return this.matchUnder(base, argv, dyn, resolved);
  }

  private matchUnder(
    key: string,
    argv: readonly string[],
    dyn: readonly boolean[] | undefined,
    resolvedProgram: string | undefined,
  ): RuleMatch[] {
    const list = this.index.get(key);
    if (list === undefined) return [];
    const out: RuleMatch[] = [];
    matchWork.rules += list.length;
    for (const rule of list) {
      const { tri, taken } = matchRest(rule, rule.optionsAnywhere, argv, dyn);
      if (tri === 0) continue;
      const matchedPrefix = [
        key,
        ...(taken ? taken.map((i) => argv[i] as string) : argv.slice(1, rule.rest.length + 1)),
      ];
      let decision = rule.decision;
      let justification = rule.justification;
      let applied: RuleException | undefined;
      let certain = tri === 2;
      for (const ex of rule.exceptions ?? []) {
        const r = matchRest(ex, rule.optionsAnywhere, argv, dyn).tri;
        if (r === 2) {
          decision = applied ? stricter(decision, ex.decision) : ex.decision;
          justification = ex.justification;
          applied = ex;
        } else if (r === 1) {
          // an exception that may apply must not relax the rule: keep the stricter side
          decision = stricter(decision, ex.decision);
          certain = false;
        }
      }
      out.push({
        rule,
        matchedPrefix,
        decision,
        justification,
        resolvedProgram,
        exception: applied,
        certain,
      });
    }
    return out;
  }
}

/** The strictest decision of `matches`, or undefined when there are none. */
export function decisionOf(matches: readonly RuleMatch[]): Decision | undefined {
  let d: Decision | undefined;
  for (const m of matches) d = d === undefined ? m.decision : stricter(d, m.decision);
  return d;
}
