/**
 * Checking argv and shell scripts against a policy.
 *
 * - `checkArgv`: Codex semantics exactly (one argv, rules keyed by argv[0], strictest wins), plus
 *   the policy's default decision when nothing matched.
 * - `checkShell` / `checkCommand`: every command the script (or a `bash -lc` argv) would run is
 *   checked; the result is the strictest of them. Whatever cannot be reduced to a concrete argv is
 *   `prompt` at least: never allow.
 */
import { type Decision, stricter } from "./decision.ts";
import { execCapableHits } from "./exec-options.ts";
import type { MatchOptions, Policy, RuleMatch } from "./policy.ts";
import {
  extractArgv,
  extractCommands,
  type ShellAnalysis,
  type ShellCommand,
} from "./shell/extract.ts";
import { isBashParserLoaded, loadBashParser } from "./shell/parser.ts";

export type CheckOptions = Omit<MatchOptions, "dynamic">;

export interface MatchedRule {
  matchedPrefix: string[];
  decision: Decision;
  justification?: string;
  resolvedProgram?: string;
  /** Where the rule was defined: `file:line:col`. */
  source: string;
  /** Where the exception that set `decision` was defined, when one applied. */
  exception?: string;
  /** The wrapper (e.g. `sudo`) whose argv matched, when the rule matched a wrapper rather than the command. */
  via?: string;
  /** False when the match depends on a value only known at run time; such a match never allows. */
  certain?: false;
}

export interface CommandResult {
  argv: string[];
  decision: Decision;
  matchedRules: MatchedRule[];
  /** True when no rule matched the command, so the policy's default decision applied. */
  unmatched: boolean;
  /** Wrappers peeled off to reach the command (`sudo`, `env`, `bash -c`, …), outermost first. */
  wrappers?: string[];
  /** Names of environment variables assigned for the command (never their values). */
  assignments?: string[];
  /** Files the command writes through redirections. */
  writes?: string[];
  notes?: string[];
}

export interface CheckResult {
  decision: Decision;
  commands: CommandResult[];
  matchedRules: MatchedRule[];
  notes: string[];
}

function location(m: RuleMatch): string {
  return `${m.rule.source.file}:${m.rule.source.line}:${m.rule.source.column}`;
}

function report(m: RuleMatch, via?: string): MatchedRule {
  const r: MatchedRule = {
    matchedPrefix: [...m.matchedPrefix],
    decision: m.decision,
    source: location(m),
  };
  if (m.justification !== undefined) r.justification = m.justification;
  if (m.resolvedProgram !== undefined) r.resolvedProgram = m.resolvedProgram;
  if (m.exception)
    r.exception = `${m.exception.source.file}:${m.exception.source.line}:${m.exception.source.column}`;
  if (via !== undefined) r.via = via;
  if (!m.certain) r.certain = false;
  return r;
}

/** Codex semantics for one argv, with the policy's default decision when no rule matched. */
export function checkArgv(
  policy: Policy,
  argv: readonly string[],
  options: CheckOptions = {},
): CheckResult {
  const matches = policy.match(argv, options);
  let decision: Decision | undefined;
  for (const m of matches)
    decision = decision === undefined ? m.decision : stricter(decision, m.decision);
  const unmatched = decision === undefined;
  const command: CommandResult = {
    argv: [...argv],
    decision: decision ?? policy.defaultDecision,
    matchedRules: matches.map((m) => report(m)),
    unmatched,
  };
  const notes = unmatched
    ? [
        `no rule matched ${JSON.stringify(argv.join(" "))}; the default decision (${policy.defaultDecision}) applies`,
      ]
    : [];
  return {
    decision: command.decision,
    commands: [command],
    matchedRules: command.matchedRules,
    notes,
  };
}

function evaluate(policy: Policy, c: ShellCommand, options: CheckOptions): CommandResult {
  const matched: MatchedRule[] = [];
  const notes = [...c.notes];
  let decided: Decision | undefined;
  let floor = c.floor;
  if (!c.unreducible) {
    const matches = policy.match(c.argv, { ...options, dynamic: c.dynamic });
    for (const hit of execCapableHits(c.argv, c.dynamic)) {
      // an allow rule that names the option (or the word) explicitly allows it
      if (
        hit.option !== "*" &&
        matches.some(
          (m) => m.certain && m.decision === "allow" && namesOption(m, hit.token, hit.option),
        )
      )
        continue;
      floor = stricter(floor, "prompt");
      notes.push(
        hit.option === "*" || hit.option === "(script)"
          ? hit.why
          : `${hit.token}: ${hit.why}; no allow rule names ${hit.option}`,
      );
    }
    for (const m of matches) {
      matched.push(report(m));
      if (m.certain) decided = decided === undefined ? m.decision : stricter(decided, m.decision);
      else if (m.decision !== "allow") {
        floor = stricter(floor, "prompt");
        notes.push(`may match a ${m.decision} rule (${location(m)}) depending on run-time values`);
      }
    }
    const program = c.argv[0] ?? "";
    if (decided === undefined && !options.resolveHostExecutables && program.includes("/")) {
      // `/bin/rm` is `rm` to the kernel: without resolution no rule matched, but a stricter rule
      // for the basename must not be bypassed by spelling the path
      for (const m of policy.match(c.argv, {
        ...options,
        dynamic: c.dynamic,
        resolveHostExecutables: true,
      })) {
        if (m.decision === "allow") continue;
        floor = stricter(floor, "prompt");
        notes.push(
          `${program} would match a ${m.decision} rule (${location(m)}) by its basename; resolve host executables to apply it`,
        );
      }
    }
  }
  let privilegedUnmatched = false;
  for (const w of c.wrappers) {
    const program = (w.argv[0] ?? "").slice((w.argv[0] ?? "").lastIndexOf("/") + 1);
    const ms = policy
      .match(w.argv, { ...options, dynamic: w.dynamic })
      .filter((m) => m.certain || m.decision !== "allow");
    for (const m of ms) {
      matched.push(report(m, program));
      // a wrapper's rule can make the command stricter, never allow it: `bash` being allowed
      // does not allow what `bash -c` runs
      if (m.certain && m.decision === "allow") continue;
      decided =
        decided === undefined ? m.decision : stricter(decided, m.certain ? m.decision : "prompt");
    }
    if ((program === "sudo" || program === "doas") && ms.length === 0) privilegedUnmatched = true;
  }
  if (privilegedUnmatched) {
    floor = stricter(floor, "prompt");
    notes.push("no rule covers the privilege wrapper (sudo/doas); at least prompt");
  }
  const unmatched = decided === undefined;
  let decision =
    decided ??
    (c.unreducible ? stricter("prompt", policy.defaultDecision) : policy.defaultDecision);
  decision = stricter(decision, floor);
  const out: CommandResult = { argv: c.argv, decision, matchedRules: matched, unmatched };
  if (c.wrappers.length > 0) out.wrappers = c.wrappers.map((w) => w.argv[0] ?? "");
  if (c.assignments.length > 0) out.assignments = c.assignments;
  if (c.writes.length > 0) out.writes = c.writes;
  if (notes.length > 0) out.notes = notes;
  return out;
}

/** True when the rule's pattern (or the exception that applied) lists `option` or the token itself. */
function namesOption(m: RuleMatch, token: string, option: string): boolean {
  const positions = m.exception ? m.exception.rest : m.rule.rest;
  return positions.some((pos) =>
    pos.some((alt) =>
      "literal" in alt ? alt.literal === option || alt.literal === token : alt.re.test(token),
    ),
  );
}

function combine(policy: Policy, analysis: ShellAnalysis, options: CheckOptions): CheckResult {
  const commands = analysis.commands.map((c) => evaluate(policy, c, options));
  let decision: Decision = analysis.floor;
  for (const c of commands) decision = stricter(decision, c.decision);
  const notes = [...analysis.notes];
  const unmatched = commands.filter((c) => c.unmatched);
  if (unmatched.length > 0) {
    notes.push(
      `unmatched (default ${policy.defaultDecision}): ${unmatched.map((c) => JSON.stringify(c.argv.join(" "))).join(", ")}`,
    );
  }
  for (const w of new Set(commands.flatMap((c) => c.writes ?? []))) notes.push(`writes ${w}`);
  return { decision, commands, matchedRules: commands.flatMap((c) => c.matchedRules), notes };
}

/** Checks every command of a shell script. Requires `loadBashParser()` to have resolved. */
export function checkShellSync(
  policy: Policy,
  script: string,
  options: CheckOptions = {},
): CheckResult {
  return combine(policy, extractCommands(script), options);
}

/** Checks every command of a shell script (loads the bash parser on first use). */
export async function checkShell(
  policy: Policy,
  script: string,
  options: CheckOptions = {},
): Promise<CheckResult> {
  await loadBashParser();
  return checkShellSync(policy, script, options);
}

/**
 * Checks an argv the way an agent would run it: `bash -lc SCRIPT` and wrappers such as `env`,
 * `sudo` or `timeout` are seen through. Requires the bash parser when the argv runs a shell script.
 */
export function checkCommandSync(
  policy: Policy,
  argv: readonly string[],
  options: CheckOptions = {},
): CheckResult {
  return combine(policy, extractArgv(argv), options);
}

/** Async `checkCommandSync` that loads the bash parser when the argv needs it. */
export async function checkCommand(
  policy: Policy,
  argv: readonly string[],
  options: CheckOptions = {},
): Promise<CheckResult> {
  if (!isBashParserLoaded() && needsParser(argv)) await loadBashParser();
  return checkCommandSync(policy, argv, options);
}

const SHELL_OR_EVAL = /(^|\/)(bash|sh|zsh|dash|ksh|ash|mksh|yash|busybox-sh|eval)$/;

/** True when checking `argv` may need the bash parser (a shell or eval anywhere in it). */
export function needsParser(argv: readonly string[]): boolean {
  return argv.some((t) => SHELL_OR_EVAL.test(t));
}

/**
 * A one-line reason for a decision, in the spirit of Codex's messages:
 * "`rm -rf d` rejected: use trash", "`rm -rf d` rejected: policy forbids commands starting with `rm`",
 * "`npm publish` needs approval: …". Meant for agents and prompts; never contains assignment values.
 */
export function explain(result: CheckResult): string {
  const worst = result.commands.find((c) => c.decision === result.decision);
  if (!worst)
    return result.decision === "allow"
      ? "allowed: nothing to run"
      : `${result.decision}: ${result.notes.join("; ") || "the script could not be analysed"}`;
  const cmd = `\`${worst.argv.join(" ")}\``;
  const rule = worst.matchedRules.find((m) => m.decision === worst.decision && m.certain !== false);
  const reason =
    rule?.justification ??
    (rule
      ? `policy ${worst.decision === "allow" ? "allows" : worst.decision === "forbidden" ? "forbids" : "asks before"} commands starting with \`${rule.matchedPrefix.join(" ")}\``
      : worst.unmatched
        ? "no rule matches it"
        : (worst.notes?.[0] ?? result.notes[0] ?? "see notes"));
  if (result.decision === "forbidden") return `${cmd} rejected: ${reason}`;
  if (result.decision === "prompt") return `${cmd} needs approval: ${reason}`;
  return `${cmd} allowed: ${reason}`;
}
