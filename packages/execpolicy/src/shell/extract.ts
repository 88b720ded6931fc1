/**
 * Reduces a bash script to the commands it would run.
 *
 * Every command anywhere in the tree is collected: lists, pipelines, subshells, groups, control
 * flow, function bodies, `$(…)`, backticks, process substitution, unquoted heredoc bodies,
 * nested `bash -c` / `eval` scripts and `find -exec`. Wrappers (env, sudo, timeout, nice, nohup,
 * time, command, exec, xargs, …) are peeled off to reach the real command. Tokens whose value is
 * only known at run time (expansions, globs) are marked dynamic; a dynamic program name makes the
 * command unreducible, which the checker turns into `prompt`.
 *
 * Linear in the size of the syntax tree, plus one parse per nested script (depth-limited).
 */
import { type Decision, stricter } from "../decision.ts";
import { parseBash, type SyntaxNode } from "./parser.ts";
import {
  ARITHMETIC_TEST_OPERATORS,
  arithmeticRisk,
  builtinRisk,
  expansionRisk,
  INTERPRETERS as INTERPRETER_NAMES,
  isDangerousVariable,
  isSensitivePath,
  RUNS_ANOTHER,
  targetRisk,
} from "./risk.ts";

export interface ShellCommand {
  /** The command after wrappers were peeled off. Dynamic tokens hold their source text. */
  argv: string[];
  /** Per token: true when its value is only known at run time. */
  dynamic: boolean[];
  /** Wrapper commands that were peeled off, outermost first (full argv from the wrapper on). */
  wrappers: { argv: string[]; dynamic: boolean[] }[];
  /** Names (never values) of environment variables assigned for this command. */
  assignments: string[];
  /** Files this command writes through redirections. */
  writes: string[];
  /** Why the decision was raised or what was noticed. */
  notes: string[];
  /** Minimum decision from shell-level risks (dangerous variables, sudo, eval, unknown program). */
  floor: Decision;
  /** True when the program itself is not a literal (`$CMD args`): no rule can be applied. */
  unreducible: boolean;
}

export interface ShellAnalysis {
  commands: ShellCommand[];
  /** Script-level notes (parse errors, top-level assignments). */
  notes: string[];
  /** Minimum decision for the whole script (parse errors, dangerous assignments). */
  floor: Decision;
}

export { isDangerousVariable } from "./risk.ts";

const SHELLS = new Set(["bash", "sh", "zsh", "dash", "ksh", "ash", "mksh", "yash", "busybox-sh"]);
const DECLARATION_BUILTINS = new Set(["export", "declare", "typeset", "local", "readonly"]);
const DYNAMIC_NODES = new Set([
  "simple_expansion",
  "expansion",
  "command_substitution",
  "process_substitution",
  "arithmetic_expansion",
]);
const WRITE_OPERATORS = new Set([">", ">>", ">|", "&>", "&>>", "<>", ">&", "&>|"]);
const HARMLESS_TARGETS = new Set(["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"]);

const REDIRECTS = new Set(["file_redirect", "heredoc_redirect", "herestring_redirect"]);

const MAX_NESTING = 8;
/**
 * Scripts nested deeper than this (brackets, substitutions, `&&` chains: each is a level of the
 * syntax tree) are not analysed: the answer is `prompt`, decided before any recursion, so it is the
 * same on every machine and never a stack overflow.
 */
export const MAX_DEPTH = 400;

/**
 * Work done by the analyser, counted: syntax nodes audited and visited, tokens built, characters
 * scanned by the pre-checks. Tests assert on it (linear in the input) instead of on wall time.
 */
export const analysisWork = { units: 0 };
const MAX_WRAPPERS = 32;
const MAX_SCRIPT_LENGTH = 256 * 1024;

interface Token {
  value: string;
  dynamic: boolean;
}

type WrapperResult =
  | {
      inner: number;
      assignments?: Token[];
      /** xargs: the command also gets words read from stdin (and `replace` is substituted). */
      input?: { replace?: string };
    }
  | { unreducible: string };

/** Parses option-style wrappers: flags, options with a value (separate or attached), then the command. */
function options(
  tokens: readonly Token[],
  start: number,
  spec: {
    flags: readonly string[];
    withValue: readonly string[];
    assignments?: boolean;
    positional?: number;
    stopAtFirst?: boolean;
  },
): WrapperResult {
  let i = start;
  const assignments: Token[] = [];
  while (i < tokens.length) {
    const t = tokens[i] as Token;
    if (t.dynamic) return { unreducible: `option ${t.value} of a wrapper is not a literal` };
    const v = t.value;
    if (v === "--") {
      i++;
      break;
    }
    if (v.startsWith("-") && v.length > 1) {
      if (spec.flags.includes(v)) {
        i++;
        continue;
      }
      if (spec.withValue.includes(v)) {
        i += 2;
        continue;
      }
      const long = v.indexOf("=");
      if (v.startsWith("--") && long > 0 && spec.withValue.includes(v.slice(0, long))) {
        i++;
        continue;
      }
      // attached value: -n10, -uroot
      if (!v.startsWith("--") && spec.withValue.includes(v.slice(0, 2))) {
        i++;
        continue;
      }
      // bundled flags: -in
      if (!v.startsWith("--") && [...v.slice(1)].every((ch) => spec.flags.includes(`-${ch}`))) {
        i++;
        continue;
      }
      return { unreducible: `unknown option ${v}` };
    }
    if (spec.assignments && /^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) {
      assignments.push(t);
      i++;
      continue;
    }
    break;
  }
  i += spec.positional ?? 0;
  if (i >= tokens.length) return { inner: -1 };
  return { inner: i, assignments };
}

const WRAPPERS: Record<string, (tokens: readonly Token[]) => WrapperResult> = {
  env: (t) => {
    const s = t.findIndex(
      (x, i) =>
        i > 0 &&
        !x.dynamic &&
        (x.value === "-S" || x.value.startsWith("-S") || x.value.startsWith("--split-string")),
    );
    if (s > 0) return { unreducible: "env -S splits a string into a command" };
    return options(t, 1, {
      flags: ["-i", "-", "--ignore-environment", "-0", "--null", "-v", "--debug"],
      withValue: ["-u", "--unset", "-C", "--chdir"],
      assignments: true,
    });
  },
  sudo: (t) =>
    options(t, 1, {
      flags: [
        "-A",
        "-b",
        "-E",
        "-H",
        "-i",
        "-K",
        "-k",
        "-n",
        "-P",
        "-S",
        "-s",
        "-B",
        "--preserve-env",
        "--login",
        "--shell",
        "--non-interactive",
        "--stdin",
        "--askpass",
        "--background",
      ],
      withValue: [
        "-C",
        "-D",
        "-g",
        "-h",
        "-p",
        "-R",
        "-r",
        "-t",
        "-T",
        "-U",
        "-u",
        "--user",
        "--group",
        "--chdir",
        "--chroot",
        "--prompt",
        "--role",
        "--type",
        "--other-user",
        "--host",
        "--close-from",
        "--command-timeout",
      ],
      assignments: true,
    }),
  doas: (t) => options(t, 1, { flags: ["-n", "-s"], withValue: ["-u", "-C"] }),
  timeout: (t) =>
    options(t, 1, {
      flags: ["--foreground", "--preserve-status", "-v", "--verbose", "-f", "-p"],
      withValue: ["-s", "--signal", "-k", "--kill-after"],
      positional: 1,
    }),
  nice: (t) => {
    const first = t[1];
    if (first && !first.dynamic && /^-[0-9]+$/.test(first.value))
      return t.length > 2 ? { inner: 2 } : { inner: -1 };
    return options(t, 1, { flags: [], withValue: ["-n", "--adjustment"] });
  },
  nohup: (t) => options(t, 1, { flags: [], withValue: [] }),
  builtin: (t) => (t.length > 1 ? { inner: 1 } : { inner: -1 }),
  busybox: (t) =>
    t.length > 1 && !(t[1] as Token).value.startsWith("-") ? { inner: 1 } : { inner: -1 },
  coproc: (t) => (t.length > 1 ? { inner: 1 } : { inner: -1 }),
  setsid: (t) =>
    options(t, 1, { flags: ["-c", "-f", "-w", "--ctty", "--fork", "--wait"], withValue: [] }),
  stdbuf: (t) =>
    options(t, 1, { flags: [], withValue: ["-i", "-o", "-e", "--input", "--output", "--error"] }),
  time: (t) =>
    options(t, 1, {
      flags: ["-p", "-a", "-v", "-q", "--portability", "--append", "--verbose", "--quiet"],
      withValue: ["-o", "-f", "--output", "--format"],
    }),
  command: (t) => {
    if (t.some((x, i) => i > 0 && !x.dynamic && /^-[pvV]*[vV][pvV]*$/.test(x.value)))
      return { inner: -1 };
    return options(t, 1, { flags: ["-p"], withValue: [] });
  },
  exec: (t) => options(t, 1, { flags: ["-c", "-l"], withValue: ["-a"] }),
  xargs: (t) => {
    // GNU xargs: -i, -e, -l and --replace, --eof, --max-lines take an optional value that must be
    // attached; the others take a value attached or in the next word
    let i = 1;
    let replace: string | undefined;
    while (i < t.length) {
      const x = t[i] as Token;
      if (x.dynamic) return { unreducible: `option ${x.value} of a wrapper is not a literal` };
      const v = x.value;
      if (v === "--") {
        i++;
        break;
      }
      if (!v.startsWith("-") || v === "-") break;
      if (v.startsWith("--")) {
        const eq = v.indexOf("=");
        const name = eq < 0 ? v : v.slice(0, eq);
        if (name === "--replace") replace = eq < 0 ? "{}" : v.slice(eq + 1);
        if (XARGS_LONG_FLAGS.has(name) && (eq < 0 || XARGS_LONG_OPTIONAL.has(name))) {
          i++;
          continue;
        }
        if (XARGS_LONG_VALUES.has(name)) {
          i += eq < 0 ? 2 : 1;
          continue;
        }
        return { unreducible: `unknown option ${v}` };
      }
      let next = false;
      for (let j = 1; j < v.length; j++) {
        const ch = v[j] as string;
        if ("0optrx".includes(ch)) continue;
        if ("iel".includes(ch)) {
          if (ch === "i") replace = v.length > j + 1 ? v.slice(j + 1) : "{}";
          break;
        }
        if ("adEILnPs".includes(ch)) {
          if (ch === "I") replace = v.length > j + 1 ? v.slice(j + 1) : t[i + 1]?.value;
          if (j === v.length - 1) next = true;
          break;
        }
        return { unreducible: `unknown option ${v}` };
      }
      i += next ? 2 : 1;
    }
    return { inner: i >= t.length ? -1 : i, input: replace === undefined ? {} : { replace } };
  },
};

const XARGS_LONG_OPTIONAL = new Set(["--replace", "--eof", "--max-lines"]);
const XARGS_LONG_FLAGS = new Set([
  ...XARGS_LONG_OPTIONAL,
  "--null",
  "--open-tty",
  "--interactive",
  "--no-run-if-empty",
  "--verbose",
  "--exit",
  "--show-limits",
]);
const XARGS_LONG_VALUES = new Set([
  "--arg-file",
  "--delimiter",
  "--max-args",
  "--max-procs",
  "--max-chars",
  "--process-slot-var",
]);

/** Programs that write the files named in their arguments. */
const WRITERS = new Set([
  "tee",
  "cp",
  "mv",
  "ln",
  "install",
  "dd",
  "rsync",
  "patch",
  "tar",
  "unzip",
  "curl",
  "wget",
  "split",
  "sort",
  "sed",
  "perl",
  "truncate",
]);
/** Of these, the ones whose arguments are mostly destinations: a run-time argument is an unknown write. */
const DESTINATION_WRITERS = new Set(["tee", "cp", "mv", "ln", "install", "dd", "rsync", "patch"]);

export interface ExtractOptions {
  /** Parse time budget per script in ms (default 40). */
  parseBudgetMs?: number;
}

/** Reduces `script` to its commands. Requires the bash parser to be loaded. */
export function extractCommands(script: string, options: ExtractOptions = {}): ShellAnalysis {
  const out: ShellAnalysis = { commands: [], notes: [], floor: "allow" };
  const ctx: Ctx = { ...options, written: new Set() };
  return guarded(out, () => {
    analyze(script, 0, out, ctx);
    runsWritten(out, ctx.written);
  });
}

/** Options plus what the whole analysis shares: the files the script writes. */
interface Ctx extends ExtractOptions {
  written: Set<string>;
}

function normalizePath(p: string): string {
  return p
    .replace(/^(\.\/)+/, "")
    .replace(/\/\.\//g, "/")
    .replace(/\/+/g, "/");
}

/** A program (or a script handed to a shell or interpreter) that the same script writes first is not understood. */
function runsWritten(out: ShellAnalysis, written: Set<string>): void {
  if (written.size === 0) return;
  for (const c of out.commands) {
    const program = c.argv[0] ?? "";
    const base = program.slice(program.lastIndexOf("/") + 1);
    const runsFiles = SHELLS.has(base) || INTERPRETER_NAMES.has(base);
    const hit = c.argv.find(
      (a, i) => (i === 0 ? a.includes("/") : runsFiles) && written.has(normalizePath(a)),
    );
    if (hit !== undefined) {
      c.notes.push(`runs ${hit}, which the script itself writes`);
      raise(c, "prompt");
    }
  }
}

/** Reduces an argv (as an agent would exec it) to its commands: wrappers and `bash -c` are seen through. */
export function extractArgv(argv: readonly string[], options: ExtractOptions = {}): ShellAnalysis {
  const out: ShellAnalysis = { commands: [], notes: [], floor: "allow" };
  if (argv.length === 0) return out;
  const cmd: ShellCommand = {
    argv: [],
    dynamic: [],
    wrappers: [],
    assignments: [],
    writes: [],
    notes: [],
    floor: "allow",
    unreducible: false,
  };
  const ctx: Ctx = { ...options, written: new Set() };
  return guarded(out, () => {
    new Walker("", 0, out, ctx).finish(
      cmd,
      argv.map((value) => ({ value, dynamic: false })),
    );
    runsWritten(out, ctx.written);
  });
}

function raise(a: { floor: Decision }, d: Decision): void {
  a.floor = stricter(a.floor, d);
}

/**
 * One reason for every resource limit (length, nesting, parse time), so the answer does not
 * depend on which limit a given input reaches first.
 */
// Digits grouped by hand: toLocaleString/Intl initialises ICU, ~30 ms of CPU on every CLI start.
export const TOO_BIG_NOTE = `the script is too long or too deeply nested to analyse (limits: ${String(MAX_SCRIPT_LENGTH).replace(/\B(?=(\d{3})+$)/g, ",")} characters, ${MAX_DEPTH} levels of nesting, 40 ms of parsing); not analysed`;

function tooBig(out: ShellAnalysis): void {
  if (!out.notes.includes(TOO_BIG_NOTE)) out.notes.push(TOO_BIG_NOTE);
  raise(out, "prompt");
}

/** Runs `fn`; a stack overflow (nested scripts inside nested scripts) becomes the same "too big" prompt. */
function guarded(out: ShellAnalysis, fn: () => void): ShellAnalysis {
  try {
    fn();
    return out;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const failed: ShellAnalysis = { commands: [], notes: [], floor: "allow" };
    tooBig(failed);
    return failed;
  }
}

function analyze(script: string, depth: number, out: ShellAnalysis, options: Ctx): void {
  if (depth > MAX_NESTING) {
    out.notes.push(`nested shell scripts deeper than ${MAX_NESTING} levels are not analysed`);
    raise(out, "prompt");
    return;
  }
  if (script.length > MAX_SCRIPT_LENGTH) {
    tooBig(out);
    raise(out, "prompt");
    return;
  }
  if (bracketDepth(script) > MAX_DEPTH) {
    tooBig(out);
    raise(out, "prompt");
    return;
  }
  let parsed = parseBash(script, options.parseBudgetMs);
  if (!parsed.timedOut && parsed.depth > MAX_DEPTH) {
    tooBig(out);
    raise(out, "prompt");
    return;
  }
  let src = script;
  let coproc: Map<number, string[]> | undefined;
  // a coproc inside a coproc's body only shows once the outer one is blanked: repeat, bounded
  for (let round = 0; !parsed.timedOut && script.includes("coproc"); round++) {
    const co = coprocCompounds(parsed.root, src);
    if (co.blank.length === 0) break;
    if (round === MAX_NESTING) {
      out.notes.push(`coproc nested deeper than ${MAX_NESTING} levels is not analysed`);
      raise(out, "prompt");
      break;
    }
    for (const [a, b] of co.blank) src = src.slice(0, a) + " ".repeat(b - a) + src.slice(b);
    coproc ??= new Map();
    for (const [at, argv] of co.at) coproc.set(at, argv);
    parsed = parseBash(src, options.parseBudgetMs);
  }
  if (parsed.timedOut) {
    tooBig(out);
    raise(out, "prompt");
    return;
  }
  if (parsed.hasError) {
    const at = findError(parsed.root);
    out.notes.push(
      `the script does not parse${at ? ` (near offset ${at.start}: ${JSON.stringify(script.slice(at.start, at.start + 20))})` : ""}; commands found are still checked`,
    );
    raise(out, "prompt");
  }
  audit(parsed.root, src, out);
  const walker = new Walker(src, depth, out, options, coproc);
  walker.visit(parsed.root, []);
  for (const [, argv] of coproc ?? []) {
    // a coproc whose body did not come out as a compound command: not understood, so not allowed
    out.notes.push(`the body of ${argv.join(" ")} could not be analysed`);
    raise(out, "prompt");
  }
}

/** Words that start a compound command: after them, `coproc [NAME]` runs the compound. */
const COMPOUND_STARTERS = new Set([
  "{",
  "(",
  "((",
  "[[",
  "while",
  "until",
  "for",
  "if",
  "case",
  "select",
]);
/** Node types a compound command parses to once `coproc [NAME]` is blanked out. */
const COMPOUND_NODES = new Set([
  "compound_statement",
  "subshell",
  "while_statement",
  "for_statement",
  "c_style_for_statement",
  "if_statement",
  "case_statement",
  "test_command",
  "redirected_statement",
]);

interface CoprocCompound {
  /** Source ranges of the `coproc` keyword and the NAME, blanked before re-parsing. */
  blank: [number, number][];
  /** Offset where the compound command starts → the coproc's own argv (`coproc [NAME]`). */
  at: Map<number, string[]>;
}

/**
 * tree-sitter-bash has no rule for `coproc [NAME] COMPOUND`: `coproc W { rm -rf /; }` comes out as
 * the plain command `coproc W { rm -rf /` followed by a stray `}` (and `coproc (…)` or
 * `coproc W while …` similarly). Finds those, so the script can be re-parsed with the keyword and
 * the name blanked out (same offsets) and the compound analysed like any `{ …; }`. `coproc cmd args`
 * (a simple command) parses fine and is left to the `coproc` wrapper.
 */
function coprocCompounds(root: SyntaxNode, src: string): CoprocCompound {
  const found: CoprocCompound = { blank: [], at: new Map() };
  const text = (n: SyntaxNode) => src.slice(n.start, n.end);
  const starts = (n: SyntaxNode | undefined) =>
    n !== undefined &&
    (COMPOUND_STARTERS.has(text(n)) || n.type === "subshell" || n.type === "compound_statement");
  const walk = (n: SyntaxNode) => {
    const [head, first, second] = n.children;
    if (n.type === "command" && head?.type === "command_name" && text(head) === "coproc") {
      if (starts(first) && first) {
        found.blank.push([head.start, head.end]);
        found.at.set(first.start, ["coproc"]);
      } else if (
        first &&
        (first.type === "word" || first.type === "ERROR") &&
        /^[A-Za-z_][A-Za-z0-9_]*$/.test(text(first)) &&
        starts(second) &&
        second
      ) {
        found.blank.push([head.start, head.end], [first.start, first.end]);
        found.at.set(second.start, ["coproc", text(first)]);
      }
    }
    for (const c of n.children) walk(c);
  };
  walk(root);
  return found;
}

function findError(root: SyntaxNode): SyntaxNode | undefined {
  const stack = [root];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (n.type === "ERROR") return n;
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i] as SyntaxNode);
  }
  return undefined;
}

const RESERVED_WORDS = new Set([
  "!",
  "{",
  "}",
  "if",
  "then",
  "else",
  "elif",
  "fi",
  "do",
  "done",
  "case",
  "esac",
  "while",
  "until",
  "for",
  "in",
  "function",
  "select",
  "[[",
  "]]",
]);

/** The deepest run of open brackets, counted on the raw text (quotes ignored: an over-count only fails closed). */
function bracketDepth(script: string): number {
  analysisWork.units += script.length >> 6;
  let depth = 0;
  let max = 0;
  // `a && b || c | d …` nests one syntax-tree level per operator until a `;` or a line end
  // that does not follow an operator
  let chain = 0;
  let afterOperator = false;
  for (let i = 0; i < script.length; i++) {
    const c = script.charCodeAt(i);
    if (c === 40 || c === 123 || c === 91) {
      if (++depth > max) max = depth;
    } else if ((c === 41 || c === 125 || c === 93) && depth > 0) depth--;
    else if (c === 38 || c === 124) {
      // && || |
      if (script.charCodeAt(i + 1) === c) i++;
      else if (c === 38) {
        chain = 0; // a single & ends the statement
        continue;
      }
      if (++chain > max) max = chain;
      afterOperator = true;
      continue;
    } else if (c === 59 || (c === 10 && !afterOperator)) chain = 0;
    if (c !== 32 && c !== 9 && c !== 10) afterOperator = false;
  }
  return max;
}

/**
 * Constructs that make bash run code while it expands a word, or that assign a variable in a way
 * the walker does not see as an assignment: each one found lowers the script to `prompt` with a
 * note. Iterative, linear in the number of nodes.
 */
function audit(root: SyntaxNode, src: string, out: ShellAnalysis): void {
  const seen = new Set<string>();
  const flag = (why: string) => {
    if (seen.has(why)) return;
    seen.add(why);
    out.notes.push(why);
    raise(out, "prompt");
  };
  const text = (n: SyntaxNode) => src.slice(n.start, n.end);
  const stack = [root];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    analysisWork.units++;
    for (const c of n.children) stack.push(c);
    switch (n.type) {
      case "command_substitution": {
        // inside heredoc bodies tree-sitter-bash reads $((x)) as $( (x) ): it is arithmetic
        const t = text(n);
        if (t.startsWith("$((")) {
          const r = arithmeticRisk(t.slice(3, -2));
          if (r) flag(r);
        }
        break;
      }
      case "array":
        // ( [i]=v … ): the subscripts of an indexed array are arithmetic
        for (const c of n.children) {
          const m = /^\[([^\]]*)\]\+?=/.exec(text(c));
          if (m && !/^[0-9]+$/.test(m[1] as string))
            flag("an array subscript is arithmetic and can run code hidden in variables");
        }
        break;
      case "arithmetic_expansion": {
        const t = text(n);
        const inner = t.startsWith("$((") ? t.slice(3, -2) : t.slice(2, -1);
        const r = arithmeticRisk(inner);
        if (r) flag(r);
        break;
      }
      case "compound_statement":
      case "c_style_for_statement": {
        const t = text(n);
        const open = t.indexOf("((");
        if (n.type === "compound_statement" && open !== 0) break;
        const close = t.indexOf("))", open);
        const r = arithmeticRisk(
          t.slice(open + 2, close < 0 ? t.length : close).replace(/;/g, ","),
        );
        if (r) flag(r);
        break;
      }
      case "subscript": {
        const t = text(n);
        const index = t.slice(t.indexOf("[") + 1, t.lastIndexOf("]"));
        if (!/^([0-9]+|[@*])$/.test(index))
          flag("an array subscript is arithmetic and can run code hidden in variables");
        break;
      }
      case "expansion": {
        const r = expansionRisk(text(n));
        if (r) flag(r);
        break;
      }
      case "binary_expression":
      case "unary_expression": {
        const op = n.children.find((c) => c.type === "test_operator");
        if (!op) break;
        const o = text(op);
        const operands = n.children.filter((c) => c !== op);
        if (ARITHMETIC_TEST_OPERATORS.has(o)) {
          if (operands.some((c) => !/^-?[0-9]+$/.test(text(c))))
            flag(`[[ … ${o} … ]] evaluates its operands as arithmetic, which can run code`);
        } else if (o === "-v") {
          if (operands.some((c) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(text(c))))
            flag("[[ -v … ]] evaluates a subscript, which can run code");
        }
        break;
      }
      case "for_statement": {
        const v = n.children.find((c) => c.type === "variable_name");
        if (v) {
          const how = text(n).startsWith("select") ? "select" : "for";
          const r = targetRisk(text(v), false, how);
          if (r) flag(r);
        }
        break;
      }
      case "command_name":
        // a reserved word read as a program name means tree-sitter misread the script
        // (`! { a; }` comes out as the command `{` with arguments)
        if (RESERVED_WORDS.has(text(n)))
          flag(
            `the parser read the reserved word ${text(n)} as a command; the script is not understood`,
          );
        break;
      case "variable_assignment": {
        const name = n.children[0];
        if (name && name.type !== "variable_name" && name.type !== "subscript")
          flag("an assignment whose target is not a plain name");
        break;
      }
      default:
        break;
    }
  }
}

class Walker {
  constructor(
    private readonly src: string,
    private readonly depth: number,
    private readonly out: ShellAnalysis,
    private readonly options: Ctx,
    /** Compound commands run by `coproc` (see `coprocCompounds`), by start offset; consumed when visited. */
    private readonly coproc?: Map<number, string[]>,
  ) {}

  private text(n: SyntaxNode): string {
    return this.src.slice(n.start, n.end);
  }

  /** Visits a statement-level node. `writes` are redirect targets applying to the commands inside. */
  visit(n: SyntaxNode, writes: readonly string[], stdin?: Token): void {
    analysisWork.units++;
    const coproc = COMPOUND_NODES.has(n.type) ? this.coproc?.get(n.start) : undefined;
    if (coproc) {
      // the compound a coproc runs: its commands are checked with `coproc [NAME]` as their wrapper
      this.coproc?.delete(n.start);
      const before = this.out.commands.length;
      this.visitNode(n, writes, stdin);
      const inside = this.out.commands.slice(before);
      for (const c of inside)
        c.wrappers.unshift({ argv: [...coproc], dynamic: coproc.map(() => false) });
      if (inside.length === 0) {
        this.out.notes.push(`${coproc.join(" ")} runs no command that could be checked`);
        raise(this.out, "prompt");
      }
      return;
    }
    this.visitNode(n, writes, stdin);
  }

  private visitNode(n: SyntaxNode, writes: readonly string[], stdin?: Token): void {
    switch (n.type) {
      case "command":
        this.command(n, writes, stdin);
        return;
      case "redirected_statement": {
        const own = [...writes];
        let input: Token | undefined;
        for (const c of n.children) {
          if (!REDIRECTS.has(c.type)) continue;
          this.redirect(c, own);
          input = this.stdinOf(c) ?? input;
        }
        const body = n.children.filter((c) => !REDIRECTS.has(c.type));
        for (const c of body) this.visitRedirected(c, writes, own, input);
        if (body.length === 0) {
          // `> file` alone still creates or truncates the file
          for (const w of own.slice(writes.length)) this.out.notes.push(`writes ${w}`);
        }
        return;
      }
      case "variable_assignment":
        this.assignment(n, null);
        return;
      case "declaration_command":
      case "unset_command": {
        const keyword = /^\S+/.exec(this.text(n))?.[0] ?? "";
        const words: Token[] = [];
        for (const c of n.children) {
          if (c.type === "variable_assignment") {
            const name = this.assignment(c, null);
            words.push({ value: `${name}=`, dynamic: false });
          } else {
            words.push(this.token(c));
            this.visitExpansions(c);
          }
        }
        const why = builtinRisk(keyword, [{ value: keyword, dynamic: false }, ...words]);
        if (why) {
          this.out.notes.push(why);
          raise(this.out, "prompt");
        }
        return;
      }
      case "heredoc_body":
        // data, except expansions (they run when the delimiter is unquoted)
        this.visitExpansions(n);
        return;
      default:
        for (const c of n.children) this.visit(c, writes);
    }
  }

  /**
   * tree-sitter-bash attaches a trailing redirect to a whole list or pipeline (`a && b > f`), but
   * bash applies it to the last command only; subshells and groups take it as a whole.
   */
  private visitRedirected(
    body: SyntaxNode,
    outer: readonly string[],
    own: readonly string[],
    stdin: Token | undefined,
  ): void {
    if (body.type !== "list" && body.type !== "pipeline") {
      this.visit(body, own, stdin);
      return;
    }
    const last = body.children.length - 1;
    body.children.forEach((c, i) => {
      if (i === last) this.visitRedirected(c, outer, own, stdin);
      else this.visit(c, outer);
    });
  }

  /** The literal text a heredoc or here-string feeds to stdin (dynamic when it expands anything). */
  private stdinOf(r: SyntaxNode): Token | undefined {
    if (r.type === "herestring_redirect") {
      const word = r.children[r.children.length - 1];
      return word ? this.token(word) : undefined;
    }
    if (r.type === "heredoc_redirect") {
      const body = this.heredocBody(r);
      if (!body?.bounds) return { value: "", dynamic: true };
      return { value: body.text, dynamic: !body.quoted && /[`$\\]/.test(body.text) };
    }
    return undefined;
  }

  /** Visits only the commands nested in expansions of a word-like node. */
  private visitExpansions(n: SyntaxNode): void {
    if (n.type === "command_substitution" || n.type === "process_substitution") {
      for (const c of n.children) this.visit(c, []);
      return;
    }
    for (const c of n.children) this.visitExpansions(c);
  }

  private assignment(n: SyntaxNode, cmd: ShellCommand | null): string {
    const [nameNode, ...values] = n.children;
    const name = nameNode ? this.text(nameNode).replace(/\[.*$/s, "") : "";
    if (nameNode) this.visitExpansions(nameNode);
    for (const c of values) this.visitExpansions(c);
    if (isDangerousVariable(name)) {
      const note = `assignment to ${name} can change what runs`;
      if (cmd) {
        cmd.notes.push(note);
        raise(cmd, "prompt");
      } else {
        this.out.notes.push(note);
        raise(this.out, "prompt");
      }
    }
    return name;
  }

  private redirect(n: SyntaxNode, writes: string[]): void {
    for (const c of n.children) this.visitExpansions(c);
    if (n.type === "heredoc_redirect") {
      this.heredocBackticks(n);
      return;
    }
    if (n.type !== "file_redirect") return;
    const dest = n.children.find((c) => c.type !== "file_descriptor");
    if (!dest) return;
    const fd = n.children.find((c) => c.type === "file_descriptor");
    // the operator is the anonymous token between the descriptor (if any) and the destination
    const op = this.src.slice(fd ? fd.end : n.start, dest.start).trim();
    const target = this.token(dest);
    if (/^\/dev\/(tcp|udp)\//.test(target.value)) {
      this.flag(`a redirect to ${target.value} opens a network connection`);
      return;
    }
    if (!WRITE_OPERATORS.has(op)) {
      if (target.dynamic && !/^[<]&$/.test(op) && dest.type !== "number")
        this.flag(
          `a redirect from ${target.value} (only known at run time) could open a network connection`,
        );
      return;
    }
    if ((op === ">&" || op === "<&") && (dest.type === "number" || target.value === "-")) return; // fd duplication
    if (HARMLESS_TARGETS.has(target.value)) return;
    writes.push(target.value);
    this.wrote(target);
  }

  /** A write to `target`: recorded, and not understood when it is unknown or a file later programs read as code. */
  private wrote(target: Token): void {
    if (target.dynamic) {
      this.flag(`writes to ${target.value}, a path only known at run time`);
      return;
    }
    this.options.written.add(normalizePath(target.value));
    if (isSensitivePath(target.value))
      this.flag(`writes ${target.value}, which a later program can read as code or configuration`);
  }

  private flag(why: string): void {
    if (!this.out.notes.includes(why)) this.out.notes.push(why);
    raise(this.out, "prompt");
  }

  /**
   * The body bash reads for a heredoc, taken from the source: from the line after the operator to
   * the delimiter line (leading tabs stripped for `<<-`). `trusted` is false when tree-sitter read
   * the body differently (it mis-parses some, e.g. one starting with a backslash), so its
   * expansions were not seen as nodes.
   */
  private heredocBody(
    r: SyntaxNode,
  ): { text: string; quoted: boolean; trusted: boolean; bounds: boolean } | undefined {
    const start = r.children.find((c) => c.type === "heredoc_start");
    const end = r.children.find((c) => c.type === "heredoc_end");
    const body = r.children.find((c) => c.type === "heredoc_body");
    if (!start || !end) return undefined;
    const quoted = /['"\\]/.test(this.text(start));
    const stripTabs = this.src.slice(r.start, start.start).includes("<<-");
    const nl = this.src.indexOf("\n", start.end);
    if (nl < 0 || nl >= end.start)
      return { text: "", quoted, trusted: body === undefined, bounds: body === undefined };
    let text = this.src.slice(nl + 1, end.start).replace(/\t+$/, "");
    if (stripTabs) text = text.replace(/^\t+/gm, "");
    let parsed = body ? this.text(body) : "";
    if (stripTabs) parsed = parsed.replace(/^\t+/gm, "").replace(/\t+$/, "");
    // redirects after the operator on the same line (`cat <<EOF > out`) are fine; anything else
    // outside the body means tree-sitter read the body as words
    const stray = r.children.some(
      (c) =>
        !["heredoc_start", "heredoc_end", "heredoc_body", "file_descriptor"].includes(c.type) &&
        c.end > nl,
    );
    // bash ends the body only at a line that is exactly the delimiter (after tabs for <<-)
    const lineStart = this.src.lastIndexOf("\n", end.start - 1) + 1;
    const before = this.src.slice(lineStart, end.start);
    const after = this.src[end.end];
    const delimiterLine =
      (before === "" || (stripTabs && /^\t+$/.test(before))) &&
      (after === undefined || after === "\n");
    // …and at the first such line: one inside the body means bash ended earlier than the parser
    const word = this.text(start).replace(/['"\\]/g, "");
    const interior = text.split("\n").some((l) => (stripTabs ? l.replace(/^\t+/, "") : l) === word);
    return {
      text,
      quoted,
      trusted: parsed === text && !stray,
      bounds: delimiterLine && !interior && this.text(end) === word,
    };
  }

  /** Backticks in an unquoted heredoc body are command substitutions (tree-sitter-bash leaves them as text). */
  private heredocBackticks(n: SyntaxNode): void {
    const body = this.heredocBody(n);
    if (!body) {
      this.flag("a heredoc whose body could not be read as bash reads it");
      return;
    }
    if (!body.bounds) {
      this.flag("a heredoc whose end the parser placed differently from bash");
      return;
    }
    if (body.quoted) return; // quoted delimiter: the body is data
    if (!body.trusted && body.text.includes("$")) {
      this.flag("a heredoc body with expansions that the parser did not read as bash does");
      return;
    }
    for (const script of backtickScripts(body.text)) {
      if (script === undefined) {
        this.flag("an unterminated backtick in a heredoc body");
        return;
      }
      if (script.trim() !== "") analyze(script, this.depth + 1, this.out, this.options);
    }
  }

  private command(n: SyntaxNode, writes: readonly string[], stdin?: Token): void {
    const cmd: ShellCommand = {
      argv: [],
      dynamic: [],
      wrappers: [],
      assignments: [],
      writes: [...writes],
      notes: [],
      floor: "allow",
      unreducible: false,
    };
    const tokens: Token[] = [];
    let input = stdin;
    for (const c of n.children) {
      if (c.type === "variable_assignment") cmd.assignments.push(this.assignment(c, cmd));
      else if (REDIRECTS.has(c.type)) {
        this.redirect(c, cmd.writes);
        input = this.stdinOf(c) ?? input;
      } else {
        const inner = c.type === "command_name" ? (c.children[0] ?? c) : c;
        tokens.push(this.token(inner));
        this.visitExpansions(inner);
      }
    }
    if (tokens.length === 0) return;
    this.finish(cmd, tokens, input);
  }

  /** Peels wrappers and nested shells off `tokens`, then records the command. */
  finish(cmd: ShellCommand, start: Token[], stdin?: Token): void {
    let tokens = start;
    let peeled = 0;
    for (;;) {
      if (++peeled > MAX_WRAPPERS) {
        cmd.notes.push(`more than ${MAX_WRAPPERS} nested wrappers are not analysed`);
        cmd.unreducible = true;
        raise(cmd, "prompt");
        break;
      }
      const head = tokens[0] as Token;
      if (head.dynamic) {
        cmd.unreducible = true;
        cmd.notes.push(`the program ${head.value} is only known at run time`);
        raise(cmd, "prompt");
        break;
      }
      const base = head.value.slice(head.value.lastIndexOf("/") + 1);
      if (DECLARATION_BUILTINS.has(base)) {
        // a declaration reached as a plain argv (e.g. behind a wrapper): check its assignments
        for (const t of tokens.slice(1)) {
          const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(t.value);
          if (m && isDangerousVariable(m[1] as string)) {
            cmd.notes.push(`assignment to ${m[1]} can change what runs`);
            raise(cmd, "prompt");
          }
        }
      }
      if (base === "eval") {
        cmd.notes.push("eval runs its arguments as a script");
        raise(cmd, "prompt");
        const args = tokens.slice(1);
        const script = args.map((t) => t.value).join(" ");
        if (args.every((t) => !t.dynamic) && script.trim() !== "") this.nested(script, cmd);
        else if (args.some((t) => t.dynamic))
          cmd.notes.push("eval of a run-time value cannot be analysed");
        break;
      }
      if (base === "find") this.findExec(tokens, cmd);
      if (base === "trap" || base === "su" || base === "runuser") {
        // trap ACTION SIGNAL…: ACTION runs later as a script; su/runuser -c SCRIPT runs it as another user
        const script = base === "trap" ? trapAction(tokens) : suScript(tokens);
        if (base !== "trap") cmd.notes.push(`runs as another user through ${base}`);
        if (script !== undefined) {
          raise(cmd, "prompt");
          if (script.dynamic)
            cmd.notes.push(`${base} runs a script that is only known at run time`);
          else if (script.value.trim() !== "") {
            cmd.notes.push(`${base} runs its argument as a script`);
            this.nested(script.value, cmd);
          }
        } else if (base !== "trap") raise(cmd, "prompt");
        break;
      }
      if (SHELLS.has(base)) {
        const script = shellScriptArg(tokens);
        if (script === undefined) {
          const startup = shellStartupRisk(tokens);
          if (startup) {
            cmd.notes.push(startup);
            raise(cmd, "prompt");
          }
          if (!shellReadsStdin(tokens)) {
            if (tokens.length > 1) {
              cmd.notes.push(`${base} runs a script file, which is not analysed`);
              raise(cmd, "prompt");
            }
            break;
          }
          // `bash <<'EOF' … EOF`, `sh <<< "…"`, `curl … | sh`: the script comes from stdin
          if (stdin === undefined || stdin.dynamic) {
            cmd.notes.push(`${base} reads commands from stdin, which cannot be analysed`);
            raise(cmd, "prompt");
            break;
          }
          cmd.wrappers.push(snapshot(tokens));
          this.nested(stdin.value, cmd);
          return;
        }
        const startup = shellStartupRisk(tokens);
        if (startup) {
          cmd.notes.push(startup);
          raise(cmd, "prompt");
        }
        if (script.dynamic) {
          cmd.notes.push(`${base} -c runs a script that is only known at run time`);
          cmd.unreducible = true;
          raise(cmd, "prompt");
          break;
        }
        cmd.wrappers.push(snapshot(tokens));
        this.nested(script.value, cmd);
        return;
      }
      const wrapper = WRAPPERS[base];
      if (!wrapper) break;
      const r = wrapper(tokens);
      if ("unreducible" in r) {
        cmd.notes.push(`${base}: ${r.unreducible}; the wrapped command cannot be determined`);
        cmd.unreducible = true;
        raise(cmd, "prompt");
        break;
      }
      if (r.inner < 0 && r.input === undefined) break;
      if (r.input !== undefined) {
        // xargs adds words read from stdin to the command (echo when none is given)
        const inner: Token[] =
          r.inner < 0 ? [{ value: "echo", dynamic: false }] : tokens.slice(r.inner);
        const replace = r.input.replace;
        const marked = inner.map((t) =>
          replace !== undefined && replace !== "" && t.value.includes(replace)
            ? { value: t.value, dynamic: true }
            : t,
        );
        cmd.wrappers.push(snapshot(tokens));
        tokens = replace === undefined ? [...marked, { value: "{stdin}", dynamic: true }] : marked;
        continue;
      }
      for (const a of r.assignments ?? []) {
        const name = a.value.slice(0, a.value.indexOf("="));
        cmd.assignments.push(name);
        if (isDangerousVariable(name)) {
          cmd.notes.push(`assignment to ${name} can change what runs`);
          raise(cmd, "prompt");
        }
      }
      if (base === "sudo" || base === "doas")
        cmd.notes.push(`runs as another user through ${base}`);
      cmd.wrappers.push(snapshot(tokens));
      tokens = tokens.slice(r.inner);
    }
    this.commandRisks(cmd, tokens);
    cmd.argv = tokens.map((t) => t.value);
    cmd.dynamic = tokens.map((t) => t.dynamic);
    this.out.commands.push(cmd);
  }

  /** Builtins that change bash's state, programs that run others, writes that later programs run. */
  private commandRisks(cmd: ShellCommand, tokens: readonly Token[]): void {
    const head = tokens[0];
    if (!head || head.dynamic) return;
    const base = head.value.slice(head.value.lastIndexOf("/") + 1);
    const why = builtinRisk(base, tokens);
    if (why) {
      cmd.notes.push(why);
      raise(cmd, "prompt");
    }
    if (RUNS_ANOTHER.has(base) && WRAPPERS[base] === undefined) {
      cmd.notes.push(`${base} runs another program, which is not analysed`);
      raise(cmd, "prompt");
    }
    if (base === "cd" || base === "pushd") {
      const to = tokens[1];
      if (to && (to.dynamic || isSensitivePath(`${to.value}/x`) || to.value === "-")) {
        cmd.notes.push(`${base} into ${to.value}: later relative writes cannot be placed`);
        raise(cmd, "prompt");
      }
    }
    if (!WRITERS.has(base)) return;
    if (base === "sed" || base === "perl") {
      if (!tokens.some((t) => /^-[A-Za-z]*i|^--in-place/.test(t.value))) return;
    }
    for (const t of tokens.slice(1)) {
      const value = t.value.startsWith("of=") ? t.value.slice(3) : t.value;
      if (t.dynamic) {
        if (DESTINATION_WRITERS.has(base) || base === "sed" || base === "perl") {
          cmd.notes.push(`${base} writes to ${t.value}, a path only known at run time`);
          raise(cmd, "prompt");
        }
        continue;
      }
      if (value.startsWith("-") && !value.includes("=")) continue;
      const path =
        value.includes("=") && value.startsWith("-") ? value.slice(value.indexOf("=") + 1) : value;
      this.options.written.add(normalizePath(path));
      if (isSensitivePath(path)) {
        cmd.notes.push(
          `${base} may write ${path}, which a later program can read as code or configuration`,
        );
        raise(cmd, "prompt");
      }
    }
  }

  /** A nested script (bash -c, eval): its commands are analysed; the wrapper is recorded on each. */
  private nested(script: string, via: ShellCommand): void {
    const inner: ShellAnalysis = { commands: [], notes: [], floor: "allow" };
    if (script.trim() === "") {
      // `bash -c ""` runs nothing; record the wrapper itself so it is still checked
      via.argv = via.wrappers.at(-1)?.argv ?? [];
      via.dynamic = via.wrappers.at(-1)?.dynamic ?? [];
      via.wrappers.pop();
      this.out.commands.push(via);
      return;
    }
    analyze(script, this.depth + 1, inner, this.options);
    for (const c of inner.commands) {
      c.wrappers.unshift(...via.wrappers);
      c.assignments.unshift(...via.assignments);
      c.writes.push(...via.writes);
      c.notes.unshift(...via.notes);
      c.floor = stricter(c.floor, via.floor);
      this.out.commands.push(c);
    }
    if (inner.commands.length === 0 && via.wrappers.length > 0) {
      // no command inside (`bash -c 'x=1'`): the shell itself still runs and must be listed
      via.argv = via.wrappers.at(-1)?.argv ?? [];
      via.dynamic = via.wrappers.at(-1)?.dynamic ?? [];
      via.wrappers.pop();
      this.out.commands.push(via);
    } else if (inner.commands.length === 0 && via.floor !== "allow") {
      // nothing ran inside, but the wrapper raised the floor (e.g. eval): keep that visible
      this.out.notes.push(...via.notes);
      raise(this.out, via.floor);
    }
    this.out.notes.push(...inner.notes);
    raise(this.out, inner.floor);
  }

  /** `find … -exec cmd {} ;` runs cmd: record it as a separate command. */
  private findExec(tokens: readonly Token[], via: ShellCommand): void {
    for (let i = 1; i < tokens.length; i++) {
      const t = tokens[i] as Token;
      if (t.dynamic || !["-exec", "-execdir", "-ok", "-okdir"].includes(t.value)) continue;
      let j = i + 1;
      while (
        j < tokens.length &&
        !(tokens[j] as Token).dynamic &&
        ![";", "+"].includes((tokens[j] as Token).value)
      )
        j++;
      const inner = tokens.slice(i + 1, j);
      if (inner.length > 0) {
        const cmd: ShellCommand = {
          argv: [],
          dynamic: [],
          wrappers: [snapshot(tokens)],
          assignments: [],
          writes: [],
          notes: [`run by find ${t.value}`],
          floor: via.floor,
          unreducible: false,
        };
        this.finish(cmd, inner);
      }
      i = j;
    }
  }

  /** The value of a word-like node. */
  token(n: SyntaxNode): Token {
    analysisWork.units++;
    switch (n.type) {
      case "word":
      case "command_name": {
        if (n.type === "command_name" && n.children[0]) return this.token(n.children[0]);
        const raw = this.text(n);
        let value = "";
        let dynamic = false;
        for (let i = 0; i < raw.length; i++) {
          const c = raw[i] as string;
          if (c === "\\") {
            const next = raw[i + 1];
            if (next === "\n") i++;
            else if (next !== undefined) {
              value += next;
              i++;
            }
            continue;
          }
          if (c === "*" || c === "?" || c === "[") dynamic = true;
          value += c;
        }
        if (/\{[^}]*(,|\.\.)[^}]*\}/.test(raw)) dynamic = true;
        return { value, dynamic };
      }
      case "number":
        return { value: this.text(n), dynamic: false };
      case "raw_string":
        return { value: this.text(n).slice(1, -1), dynamic: false };
      case "ansi_c_string":
        return { value: decodeAnsiC(this.text(n).slice(2, -1)), dynamic: false };
      case "string":
      case "translated_string": {
        const open = n.type === "string" ? 1 : 2;
        let value = "";
        let dynamic = false;
        let pos = n.start + open;
        const end = n.end - 1;
        for (const c of n.children) {
          if (!DYNAMIC_NODES.has(c.type) && c.type !== "ERROR") continue;
          value += unescapeDouble(this.src.slice(pos, c.start));
          value += this.text(c);
          dynamic = true;
          pos = c.end;
        }
        if (pos < end) value += unescapeDouble(this.src.slice(pos, end));
        return { value, dynamic };
      }
      case "concatenation": {
        let value = "";
        let dynamic = false;
        for (const c of n.children) {
          const t = this.token(c);
          value += t.value;
          dynamic ||= t.dynamic;
        }
        if (/\{[^}]*(,|\.\.)[^}]*\}/.test(this.text(n))) dynamic = true;
        return { value, dynamic };
      }
      default:
        return { value: this.text(n), dynamic: true };
    }
  }
}

function snapshot(tokens: readonly Token[]): { argv: string[]; dynamic: boolean[] } {
  return { argv: tokens.map((t) => t.value), dynamic: tokens.map((t) => t.dynamic) };
}

/** For `bash [opts] -c SCRIPT …` returns the script token; undefined when the shell is not given -c. */
function shellScriptArg(tokens: readonly Token[]): Token | undefined {
  let i = 1;
  let sawC = false;
  while (i < tokens.length) {
    const t = tokens[i] as Token;
    if (t.dynamic) return sawC ? t : undefined;
    const v = t.value;
    if (v === "--" || v === "-") {
      i++;
      break;
    }
    if (/^[-+]o$|^[-+]O$/.test(v) || v === "--rcfile" || v === "--init-file") {
      i += 2;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(v)) {
      if (v.startsWith("-") && v.includes("c")) sawC = true;
      i++;
      continue;
    }
    if (v.startsWith("--")) {
      i++;
      continue;
    }
    break;
  }
  if (!sawC) return undefined;
  return tokens[i] ?? { value: "", dynamic: false };
}

/** The action of `trap [-lp] [ACTION] SIGNAL…` (undefined for listing or resetting). */
function trapAction(tokens: readonly Token[]): Token | undefined {
  let i = 1;
  while (i < tokens.length && /^-[lp]+$/.test((tokens[i] as Token).value)) i++;
  if ((tokens[i] as Token | undefined)?.value === "--") i++;
  const action = tokens[i];
  if (action === undefined || i + 1 >= tokens.length || action.value === "-") return undefined;
  return action;
}

/** The script of `su [options] -c SCRIPT [user]` / `runuser … -c SCRIPT`. */
function suScript(tokens: readonly Token[]): Token | undefined {
  for (let i = 1; i < tokens.length; i++) {
    const v = (tokens[i] as Token).value;
    if (v === "-c" || v === "--command") return tokens[i + 1] ?? { value: "", dynamic: false };
    if (v.startsWith("--command="))
      return { value: v.slice("--command=".length), dynamic: (tokens[i] as Token).dynamic };
  }
  return undefined;
}

/** True when a shell started with `tokens` (and no -c) reads its script from stdin. */
function shellReadsStdin(tokens: readonly Token[]): boolean {
  let i = 1;
  while (i < tokens.length) {
    const t = tokens[i] as Token;
    if (t.dynamic) return false;
    const v = t.value;
    if (/^[-+]o$|^[-+]O$/.test(v) || v === "--rcfile" || v === "--init-file") {
      i += 2;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(v)) {
      if (v.startsWith("-") && v.includes("s")) return true;
      i++;
      continue;
    }
    if (v.startsWith("--") || v === "-") {
      i++;
      continue;
    }
    return false; // a script file
  }
  return true;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\([$`"\\\n])/g, (_, c: string) => (c === "\n" ? "" : c));
}

function decodeAnsiC(s: string): string {
  const simple: Record<string, string> = {
    n: "\n",
    t: "\t",
    r: "\r",
    a: "\x07",
    b: "\b",
    e: "\x1b",
    E: "\x1b",
    f: "\f",
    v: "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
  };
  return s.replace(
    /\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs,
    (m, e: string) => {
      const head = e[0] as string;
      if (simple[head] !== undefined && e.length === 1) return simple[head] as string;
      if (head === "x" || head === "u" || head === "U") {
        const cp = Number.parseInt(e.slice(1), 16);
        return cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : "";
      }
      if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8) & 0xff);
      if (head === "c" && e.length === 2) return String.fromCharCode(e.charCodeAt(1) & 0x1f);
      return m;
    },
  );
}

/** The scripts of the backtick substitutions in a heredoc body; `undefined` for an unterminated one. */
function backtickScripts(body: string): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  let open = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c !== "`") continue;
    if (open < 0) open = i;
    else {
      out.push(body.slice(open + 1, i).replace(/\\([`$\\])/g, "$1"));
      open = -1;
    }
  }
  if (open >= 0) out.push(undefined);
  return out;
}

const RISKY_SHOPT = new Set(["expand_aliases", "extdebug", "login_shell"]);

/** Shell options that read start-up files or change what later words run. */
function shellStartupRisk(tokens: readonly Token[]): string | undefined {
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    const v = t.value;
    if (t.dynamic) return undefined;
    if (v === "--rcfile" || v === "--init-file" || v === "--debugger")
      return `${v} makes the shell run a start-up file`;
    if (v === "-O" || v === "+O") {
      const opt = tokens[i + 1];
      if (!opt || opt.dynamic || RISKY_SHOPT.has(opt.value))
        return `the shell starts with shopt ${opt?.value ?? ""} (aliases or the debugger)`;
      i++;
      continue;
    }
    if (v === "-o" || v === "+o") {
      i++;
      continue;
    }
    if (v === "--") return undefined;
    if (/^-[A-Za-z]+$/.test(v)) {
      if (v.includes("i")) return "an interactive shell (-i) reads ~/.bashrc and expands aliases";
      if (v.includes("c")) return undefined;
      continue;
    }
    if (v.startsWith("--") || /^\+[A-Za-z]+$/.test(v)) continue;
    return undefined;
  }
  return undefined;
}
