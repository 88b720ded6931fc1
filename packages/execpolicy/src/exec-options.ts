/**
 * Options of common programs that make the program run another program (or load code, or write a
 * file that a later program runs). A rule that allows the program does not allow these options:
 * the check answers `prompt` unless the allow rule names the option in its pattern, and loading a
 * policy warns about allow rules for these programs. The table is documented in the README.
 */
import { awkScriptRisk, sedScriptRisk } from "./shell/risk.ts";

export interface ExecCapableEntry {
  /** Options that run or load code. Long options also match `--opt=value`; short ones an attached value. */
  readonly options: readonly string[];
  /** Positional words (subcommands) that run code, e.g. `git submodule foreach`. */
  readonly words?: readonly string[];
  /** What the options do, for notes and warnings. */
  readonly why: string;
  /** A further check of the argument list (scripts of sed/awk, make variables). */
  readonly inspect?: (args: readonly string[]) => string | undefined;
}

const makeVariables = (args: readonly string[]): string | undefined =>
  args.some((a) => /^[A-Za-z_][A-Za-z0-9_.]*\s*[:+?!]?=/.test(a))
    ? "make VAR=value overrides variables such as SHELL or CC that make runs"
    : undefined;

/** The first non-option argument of sed/awk (or every -e value) is the program. */
function scripts(args: readonly string[], valueOptions: readonly string[]): string[] {
  const out: string[] = [];
  let sawScriptOption = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--") {
      if (!sawScriptOption && args[i + 1] !== undefined) out.push(args[i + 1] as string);
      break;
    }
    if (a === "-e" || a === "--expression" || a === "--source") {
      sawScriptOption = true;
      if (args[i + 1] !== undefined) out.push(args[++i] as string);
      continue;
    }
    if (a.startsWith("--expression=") || a.startsWith("--source=")) {
      sawScriptOption = true;
      out.push(a.slice(a.indexOf("=") + 1));
      continue;
    }
    if (a.startsWith("-e") && a.length > 2 && a[1] === "e") {
      sawScriptOption = true;
      out.push(a.slice(2));
      continue;
    }
    if (valueOptions.includes(a)) {
      i++;
      continue;
    }
    if (a.startsWith("-") && a.length > 1) continue;
    if (!sawScriptOption) out.push(a);
    break;
  }
  return out;
}

const sedInspect = (args: readonly string[]): string | undefined => {
  for (const s of scripts(args, ["-l", "--line-length", "-s"])) {
    const r = sedScriptRisk(s);
    if (r) return r;
  }
  return undefined;
};

const awkInspect = (args: readonly string[]): string | undefined => {
  for (const s of scripts(args, ["-v", "-F", "--assign", "--field-separator"])) {
    const r = awkScriptRisk(s);
    if (r) return r;
  }
  return undefined;
};

const AWK: ExecCapableEntry = {
  options: ["-f", "--file", "-E", "--exec", "-l", "--load", "-i", "--include"],
  why: "awk programs can run commands (system, |) or load code",
  inspect: awkInspect,
};
const VIM: ExecCapableEntry = {
  options: ["-c", "--cmd", "-S", "-u", "+"],
  why: "editor commands can run shell commands",
};
const NPM: ExecCapableEntry = {
  options: [
    "--node-options",
    "--script-shell",
    "--userconfig",
    "--globalconfig",
    "-c",
    "--call",
    "--shell",
  ],
  why: "these options choose the shell or the Node options scripts run with",
};

/** The table, by program basename. */
export const EXEC_CAPABLE_OPTIONS: Readonly<Record<string, ExecCapableEntry>> = {
  find: {
    options: ["-delete", "-fprint", "-fprint0", "-fprintf", "-fls"],
    why: "find deletes or writes files (-exec/-ok commands are checked as commands)",
  },
  rg: {
    options: ["--pre", "--pre-glob", "-z", "--search-zip", "--hostname-bin"],
    why: "ripgrep runs a preprocessor or decompressor program for each file",
  },
  sort: { options: ["--compress-program"], why: "sort runs the compression program" },
  split: { options: ["--filter"], why: "split runs the filter through the shell" },
  tar: {
    options: [
      "--to-command",
      "--checkpoint-action",
      "--use-compress-program",
      "-I",
      "--rsh-command",
      "--rmt-command",
      "--info-script",
      "--new-volume-script",
      "-F",
    ],
    why: "tar runs these commands",
  },
  git: {
    options: [
      "-c",
      "--config-env",
      "--exec-path",
      "--git-dir",
      "--work-tree",
      "--upload-pack",
      "--receive-pack",
      "--exec",
      "-x",
      "--ext-diff",
      "--extcmd",
      "--open-files-in-pager",
      "-O",
      "--sendmail-cmd",
      "--smtp-server",
      "--template",
      "--output",
    ],
    words: [
      "foreach",
      "bisect",
      "filter-branch",
      "difftool",
      "mergetool",
      "instaweb",
      "web--browse",
      "daemon",
      "credential",
      "send-email",
      "hook",
      "config",
      "submodule",
    ],
    why: "git runs configured or given programs (config values, hooks, external diff, pack helpers)",
  },
  npm: {
    ...NPM,
    words: ["exec", "x", "explore", "config", "set", "pkg", "init", "create"],
  },
  npx: NPM,
  pnpm: { ...NPM, words: ["exec", "dlx", "create", "config"] },
  yarn: { ...NPM, words: ["exec", "dlx", "create", "config"] },
  make: {
    options: [
      "-f",
      "--file",
      "--makefile",
      "--eval",
      "-E",
      "-C",
      "--directory",
      "-I",
      "--include-dir",
    ],
    why: "make runs the recipes of another makefile or of evaluated text",
    inspect: makeVariables,
  },
  gmake: {
    options: ["-f", "--file", "--makefile", "--eval", "-E", "-C", "--directory"],
    why: "make runs the recipes of another makefile or of evaluated text",
    inspect: makeVariables,
  },
  sed: {
    options: ["-f", "--file"],
    why: "sed scripts can run commands (e) or write files (w)",
    inspect: sedInspect,
  },
  awk: AWK,
  gawk: AWK,
  mawk: AWK,
  nawk: AWK,
  man: {
    options: ["-P", "--pager", "-H", "--html", "-C", "--config-file"],
    why: "man runs the pager or browser it is given",
  },
  less: {
    options: ["+", "--lesskey-file", "--lesskey-src"],
    why: "less commands can run programs",
  },
  more: { options: ["+"], why: "more commands can run programs" },
  vi: VIM,
  vim: VIM,
  nvim: VIM,
  view: VIM,
  ex: VIM,
  vimdiff: VIM,
  ssh: { options: ["-o", "-F"], why: "ssh options such as ProxyCommand run local programs" },
  scp: { options: ["-S", "-o", "-F"], why: "scp runs the given ssh program or ProxyCommand" },
  sftp: { options: ["-S", "-D", "-o", "-F"], why: "sftp runs the given ssh program" },
  rsync: {
    options: ["-e", "--rsh", "--rsync-path"],
    why: "rsync runs the given remote shell",
  },
  wget: {
    options: ["-e", "--execute", "--use-askpass", "--config"],
    why: "wget runs wgetrc commands or an askpass program",
  },
  zip: { options: ["-TT", "--unzip-command"], why: "zip runs the test command" },
  sdiff: { options: ["--diff-program"], why: "sdiff runs the given diff program" },
  diff3: { options: ["--diff-program"], why: "diff3 runs the given diff program" },
  cargo: { options: ["--config"], why: "cargo config values choose programs it runs" },
  gradle: { options: ["-I", "--init-script"], why: "gradle runs init scripts" },
  python: { options: ["-c"], why: "python runs inline code" },
  python3: { options: ["-c"], why: "python runs inline code" },
  node: {
    options: [
      "-e",
      "--eval",
      "-p",
      "--print",
      "-r",
      "--require",
      "--import",
      "--loader",
      "--experimental-loader",
    ],
    why: "node runs inline or preloaded code",
  },
  perl: { options: ["-e", "-E", "-M", "-m", "-x"], why: "perl runs inline or loaded code" },
  ruby: { options: ["-e", "-r"], why: "ruby runs inline or loaded code" },
  php: { options: ["-r", "-B", "-R", "-E"], why: "php runs inline code" },
  lua: { options: ["-e", "-l"], why: "lua runs inline or loaded code" },
};

export interface ExecCapableHit {
  /** The option (or word) as listed in the table. */
  option: string;
  /** The argument that used it. */
  token: string;
  why: string;
}

function usesOption(token: string, option: string): boolean {
  if (option === "+") return token.startsWith("+") && token.length > 1;
  if (token === option) return true;
  if (option.startsWith("--")) return token.startsWith(`${option}=`);
  // short option: attached value (-Icmd) or bundled as the last letter of a group is too loose; attached only
  return option.length === 2 && token.startsWith(option) && !token.startsWith("--");
}

/**
 * Exec-capable options used in `argv` (program first). Tokens only known at run time count as
 * possibly any option: they produce a hit with option `*`.
 */
export function execCapableHits(
  argv: readonly string[],
  dynamic: readonly boolean[] = [],
): ExecCapableHit[] {
  const program = (argv[0] ?? "").slice((argv[0] ?? "").lastIndexOf("/") + 1);
  const entry = Object.hasOwn(EXEC_CAPABLE_OPTIONS, program)
    ? EXEC_CAPABLE_OPTIONS[program]
    : undefined;
  if (!entry) return [];
  const hits: ExecCapableHit[] = [];
  const args = argv.slice(1);
  for (let i = 0; i < args.length; i++) {
    const token = args[i] as string;
    if (dynamic[i + 1]) {
      hits.push({
        option: "*",
        token,
        why: `an argument of ${program} is only known at run time and could be one of its exec-capable options`,
      });
      continue;
    }
    if (token === "--" && program !== "sed" && !program.endsWith("awk")) break;
    for (const option of entry.options) {
      if (usesOption(token, option)) hits.push({ option, token, why: entry.why });
    }
    if (entry.words?.includes(token)) hits.push({ option: token, token, why: entry.why });
  }
  if (entry.inspect && !dynamic.slice(1).some(Boolean)) {
    const why = entry.inspect(args);
    if (why) hits.push({ option: "(script)", token: args.join(" "), why });
  }
  return hits;
}
