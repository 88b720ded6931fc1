/**
 * What the script analyser does not fully understand, it does not allow. This module holds the
 * small, pure judgements behind that rule: which words make bash run code while it expands them
 * (arithmetic, indirection, prompt expansion), which variables change what a later program
 * loads or runs, which builtins change bash's own lookup state, which files a later program reads
 * as code, and which programs run other programs.
 *
 * Every function answers with a reason (a short sentence) when the construct is risky, and with
 * `undefined` when it is understood. A reason always lowers the decision to at least `prompt`.
 */

/** Variables that change what a program loads or runs (exact names). */
const DANGEROUS_NAMES = new Set([
  "PATH",
  "BASH_ENV",
  "ENV",
  "SHELLOPTS",
  "BASHOPTS",
  "BASH_CMDS",
  "BASH_ALIASES",
  "BASH_LOADABLES_PATH",
  "BASH_XTRACEFD",
  "EXECIGNORE",
  "POSIXLY_CORRECT",
  "PS0",
  "PS1",
  "PS2",
  "PS3",
  "PS4",
  "PROMPT_COMMAND",
  "IFS",
  "CDPATH",
  "GLOBIGNORE",
  "INPUTRC",
  "HOME",
  "ZDOTDIR",
  "SHELL",
  "CONFIG_SHELL",
  "SSH_ASKPASS",
  "SUDO_ASKPASS",
  "EDITOR",
  "VISUAL",
  "PAGER",
  "MANPAGER",
  "MANOPT",
  "BROWSER",
  "LESSOPEN",
  "LESSCLOSE",
  "LESS",
  "LESSKEYIN",
  "CLASSPATH",
  "JAVA_TOOL_OPTIONS",
  "_JAVA_OPTIONS",
  "JDK_JAVA_OPTIONS",
  "MAKEFLAGS",
  "MAKEFILES",
  "MFLAGS",
  "GNUMAKEFLAGS",
  "TAR_OPTIONS",
  "GREP_OPTIONS",
  "RIPGREP_CONFIG_PATH",
  "GZIP",
  "XZ_OPT",
  "ZSTD_CLEVEL",
  "GCONV_PATH",
  "LOCPATH",
  "NLSPATH",
  "HOSTALIASES",
  "GNUPGHOME",
  "VIMINIT",
  "EXINIT",
  "MYVIMRC",
  "CURL_HOME",
  "WGETRC",
  "RUSTC_WRAPPER",
  "RUSTC",
  "CC",
  "CXX",
  "LD",
  "CPP",
  "COMPILER_PATH",
  "GCC_EXEC_PREFIX",
  "TERMINAL",
  "TMUX",
  "DOCKER_HOST",
  "KUBECONFIG",
]);

/** Variables that change what a program loads or runs (prefixes; `NPM_CONFIG_` in any case). */
const DANGEROUS_PREFIXES = [
  "LD_",
  "DYLD_",
  "BASH_FUNC_",
  "GIT_",
  "XDG_",
  "NPM_CONFIG_",
  "YARN_",
  "PNPM_",
  "COREPACK_",
  "NODE_",
  "PYTHON",
  "PERL",
  "RUBY",
  "GEM_",
  "BUNDLE_",
  "CARGO_",
  "RUSTUP_",
  "PIP_",
  "UV_",
  "LUA_",
  "PHP",
  "DENO_",
  "BUN_",
  "SSH_",
  "DOCKER_",
];

/** True when assigning `name` (by any spelling: prefix, export, declare, read, for, …) can change what runs. */
export function isDangerousVariable(name: string): boolean {
  if (DANGEROUS_NAMES.has(name)) return true;
  const upper = name.toUpperCase();
  // npm reads npm_config_* in any case; the other families are matched upper-case only
  if (upper.startsWith("NPM_CONFIG_")) return true;
  return DANGEROUS_PREFIXES.some((p) => name.startsWith(p));
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The reason a variable name used as an assignment target (`read X`, `for X`, `printf -v X`) is risky. */
export function targetRisk(name: string, dynamic: boolean, how: string): string | undefined {
  if (dynamic) return `${how} assigns a variable whose name is only known at run time`;
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(\[(.*)\])?$/s.exec(name);
  if (!m) return `${how} assigns ${JSON.stringify(name)}, which is not a plain variable name`;
  const base = m[1] as string;
  if (m[2] !== undefined && !/^[0-9]+$/.test(m[3] as string))
    return `${how} assigns ${base}[…]: a subscript is arithmetic and can run code`;
  if (isDangerousVariable(base)) return `${how} assigns ${base}, which can change what runs`;
  return undefined;
}

/** Arithmetic text is understood only when it holds numbers and operators: a variable's value is evaluated again and can run `$(…)` through subscripts. */
export function arithmeticRisk(text: string): string | undefined {
  if (/^[\s0-9+\-*/%()<>=!&|^~?:,]*$/.test(text)) return undefined;
  return "arithmetic on variables can run code hidden in their values (subscripts, $(…))";
}

/**
 * `${…}` forms that are understood: `${NAME}`, `${#NAME}`, `${NAME[@]}` (literal or `@`/`*`
 * subscripts), and the operators that only test, trim, replace or change case. The operand words
 * themselves are visited separately (their substitutions are commands like any other).
 */
export function expansionRisk(text: string): string | undefined {
  if (!text.startsWith("${") || !text.endsWith("}")) return "an unusual parameter expansion";
  const body = text.slice(2, -1);
  if (body.startsWith("!")) {
    // ${!prefix*} ${!prefix@} ${!name[@]} ${!name[*]} only list names or keys
    if (/^![A-Za-z_][A-Za-z0-9_]*([*@]|\[[*@]\])$/.test(body)) return undefined;
    return "${!…} indirection evaluates a name taken from a value (subscripts run code)";
  }
  const m = /^(#?)([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])(\[([^\]]*)\])?(.*)$/s.exec(body);
  if (!m) return "a parameter expansion that is not understood";
  const subscript = m[4];
  if (subscript !== undefined && !/^([0-9]+|[@*])$/.test(subscript))
    return "an array subscript is arithmetic and can run code";
  const rest = m[5] as string;
  if (m[1] === "#") return rest === "" ? undefined : "an unusual parameter expansion";
  if (rest === "") return undefined;
  if (rest.startsWith("@"))
    return `\${…${rest.slice(0, 2)}} transformations (@P runs prompt expansion) are not analysed`;
  if (/^:?[-+?]/.test(rest)) return undefined;
  if (/^:?=/.test(rest)) {
    const name = m[2] as string;
    return isDangerousVariable(name)
      ? `\${${name}:=…} assigns ${name}, which can change what runs`
      : undefined;
  }
  if (rest.startsWith(":")) {
    // ${v:offset:length}: both are arithmetic
    return /^:[\s0-9]*(:[\s0-9]*)?$/.test(rest)
      ? undefined
      : "a substring offset is arithmetic and can run code hidden in variables";
  }
  if (/^(##?|%%?|\/[/#%]?|\^\^?|,,?)/.test(rest)) return undefined;
  return "a parameter expansion that is not understood";
}

/** Arithmetic comparison operators inside `[[ … ]]` (their operands are evaluated as arithmetic). */
export const ARITHMETIC_TEST_OPERATORS = new Set(["-eq", "-ne", "-lt", "-le", "-gt", "-ge"]);

export interface Word {
  value: string;
  dynamic: boolean;
}

const SHOPT_RISKY = new Set(["expand_aliases", "extdebug", "login_shell", "sourcepath"]);

/**
 * Builtins that change what later words run or that run code themselves. `tokens` is the whole
 * argv (builtin name first, after wrappers were peeled).
 */
export function builtinRisk(base: string, tokens: readonly Word[]): string | undefined {
  const args = tokens.slice(1);
  const literalArgs = args.every((t) => !t.dynamic);
  switch (base) {
    case "enable":
      return "enable loads or switches builtins, which changes what later commands run";
    case "hash":
      if (args.some((t) => t.dynamic || /^-[a-z]*p/.test(t.value)))
        return "hash -p binds a command name to another program";
      return undefined;
    case "alias":
      if (args.some((t) => t.dynamic || t.value.includes("=")))
        return "an alias changes what a command name runs";
      return undefined;
    case "shopt":
      if (!literalArgs) return "shopt with an option only known at run time";
      if (args.some((t) => t.value === "-s") && args.some((t) => SHOPT_RISKY.has(t.value)))
        return "shopt enables alias expansion or the debugger, which changes what runs";
      return undefined;
    case "set":
      if (!literalArgs) return "set with an option only known at run time";
      if (args.some((t) => /^-[a-zA-Z]*T/.test(t.value) || t.value === "functrace"))
        return "set -T makes traps run inside functions";
      return undefined;
    case "source":
    case ".":
      return `${base} runs a file's content, which is not analysed`;
    case "let":
      for (const t of args) {
        const r = t.dynamic ? "let of a run-time value" : arithmeticRisk(t.value);
        if (r) return `let: ${r}`;
      }
      return undefined;
    case "compgen":
    case "complete":
      if (args.some((t) => t.dynamic || /^-[A-Za-z]*[CF]/.test(t.value)))
        return `${base} -C/-F runs a command or a function`;
      return undefined;
    case "fc":
      return "fc runs commands from the history";
    case "bind":
      return "bind can attach commands to keys";
    case "read":
      return namedTargets("read", args, ["-a"], ["-d", "-i", "-n", "-N", "-p", "-t", "-u"]);
    case "mapfile":
    case "readarray":
      if (args.some((t) => t.dynamic || /^-[A-Za-z]*C/.test(t.value)))
        return `${base} -C runs a callback`;
      return namedTargets(base, args, [], ["-d", "-n", "-O", "-s", "-u", "-c"]);
    case "printf": {
      const i = args.findIndex((t) => t.dynamic || t.value === "-v" || t.value.startsWith("-v"));
      if (i < 0) return undefined;
      const t = args[i] as Word;
      if (t.dynamic) return "printf with a first argument only known at run time (could be -v)";
      const name = t.value === "-v" ? args[i + 1] : { value: t.value.slice(2), dynamic: false };
      if (!name) return undefined;
      return targetRisk(name.value, name.dynamic, "printf -v");
    }
    case "getopts": {
      const name = args[1];
      return name ? targetRisk(name.value, name.dynamic, "getopts") : undefined;
    }
    case "wait": {
      const i = args.findIndex((t) => t.value === "-p");
      const name = i >= 0 ? args[i + 1] : undefined;
      return name ? targetRisk(name.value, name.dynamic, "wait -p") : undefined;
    }
    case "unset":
      for (const t of args) {
        if (t.dynamic) return "unset of a name only known at run time";
        if (t.value.startsWith("-")) continue;
        if (!IDENTIFIER.test(t.value))
          return `unset ${JSON.stringify(t.value)}: a subscript is arithmetic and can run code`;
      }
      return undefined;
    case "declare":
    case "typeset":
    case "local":
    case "export":
    case "readonly":
      return declarationRisk(base, args);
    case "test":
    case "[":
      for (let i = 0; i < args.length; i++) {
        const t = args[i] as Word;
        if (t.dynamic || t.value !== "-v") continue;
        const name = args[i + 1];
        if (!name || name.dynamic || !IDENTIFIER.test(name.value))
          return `${base} -v evaluates a subscript, which can run code`;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** `read`-style builtins: options, then variable names that must be plain and harmless. */
function namedTargets(
  how: string,
  args: readonly Word[],
  nameOptions: readonly string[],
  valueOptions: readonly string[],
): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const t = args[i] as Word;
    if (t.dynamic) return `${how} with an argument only known at run time`;
    const v = t.value;
    if (nameOptions.includes(v)) {
      const n = args[++i];
      if (n) {
        const r = targetRisk(n.value, n.dynamic, how);
        if (r) return r;
      }
      continue;
    }
    if (valueOptions.includes(v)) {
      i++;
      continue;
    }
    if (v.startsWith("-") && v.length > 1) {
      // bundled flags (-ra NAME) or an attached value (-d:, -p'prompt')
      const letters = v.slice(1);
      const attachedAt = [...letters].findIndex((ch) => valueOptions.includes(`-${ch}`));
      if (attachedAt >= 0 && attachedAt < letters.length - 1) continue;
      const last = `-${letters.at(-1)}`;
      if (nameOptions.includes(last)) {
        const name = args[++i];
        if (name) {
          const r = targetRisk(name.value, name.dynamic, how);
          if (r) return r;
        }
      } else if (valueOptions.includes(last)) i++;
      continue;
    }
    const r = targetRisk(v, false, how);
    if (r) return r;
  }
  return undefined;
}

/** `declare`/`export`/… reached as plain words (`export 'X=1'`, `declare -n`, `local -i`). */
export function declarationRisk(how: string, args: readonly Word[]): string | undefined {
  for (const t of args) {
    if (t.dynamic) return `${how} of a word only known at run time`;
    const v = t.value;
    if (/^[-+][A-Za-z]+$/.test(v)) {
      if (/[nI]/.test(v)) return `${how} ${v}: a name reference redirects later assignments`;
      if (v.includes("i"))
        return `${how} ${v}: integer variables evaluate their values as arithmetic`;
      continue;
    }
    const eq = v.indexOf("=");
    const target = eq < 0 ? v : v.slice(0, v[eq - 1] === "+" ? eq - 1 : eq);
    if (eq < 0 && IDENTIFIER.test(target)) continue; // export NAME: no new value
    const r = targetRisk(target, false, how);
    if (r) return r;
  }
  return undefined;
}

/** Programs that run another program given in their arguments, with no grammar we peel. */
export const RUNS_ANOTHER = new Set([
  "watch",
  "flock",
  "chroot",
  "unshare",
  "nsenter",
  "ionice",
  "taskset",
  "chrt",
  "prlimit",
  "script",
  "strace",
  "ltrace",
  "gdb",
  "valgrind",
  "systemd-run",
  "parallel",
  "fakeroot",
  "sg",
  "newgrp",
  "catchsegv",
  "firejail",
  "bwrap",
  "proot",
  "dbus-run-session",
  "sshpass",
  "torsocks",
  "proxychains",
  "proxychains4",
  "unbuffer",
  "expect",
  "toybox",
  "pkexec",
  "run-parts",
  "xdg-open",
  "at",
  "batch",
  "cpulimit",
  "entr",
  "tmux",
  "screen",
  "nohup",
  "setpriv",
  "capsh",
  "numactl",
  "cgexec",
  "systemd-nspawn",
  "machinectl",
  "start-stop-daemon",
  "daemonize",
  "stdbuf",
  "faketime",
  "eatmydata",
  "chpst",
  "softlimit",
  "envdir",
  "setuidgid",
  "s6-setuidgid",
  "ssh-agent",
  "dbus-launch",
  "xvfb-run",
  "rlwrap",
  "direnv",
  "mise",
  "asdf",
  "nix-shell",
  "conda",
]);

/** Interpreters that run a script file or inline code. */
export const INTERPRETERS = new Set([
  "python",
  "python2",
  "python3",
  "node",
  "nodejs",
  "deno",
  "bun",
  "perl",
  "ruby",
  "php",
  "lua",
  "luajit",
  "tclsh",
  "wish",
  "pwsh",
  "osascript",
  "Rscript",
  "julia",
  "groovy",
  "jshell",
]);

/** Basenames of files that a later program reads as code or configuration that runs programs. */
const SENSITIVE_BASENAMES = new Set([
  ".gitconfig",
  ".gitattributes",
  ".gitmodules",
  "package.json",
  ".npmrc",
  ".yarnrc",
  ".yarnrc.yml",
  ".pnpmfile.cjs",
  "Makefile",
  "makefile",
  "GNUmakefile",
  ".envrc",
  ".env",
  ".bashrc",
  ".bash_profile",
  ".bash_login",
  ".bash_logout",
  ".profile",
  ".zshrc",
  ".zshenv",
  ".zprofile",
  ".zlogin",
  ".kshrc",
  ".mkshrc",
  ".inputrc",
  ".ripgreprc",
  ".curlrc",
  ".wgetrc",
  ".netrc",
  ".vimrc",
  ".exrc",
  ".gvimrc",
  ".nvimrc",
  ".lesskey",
  ".pythonrc",
  ".pythonrc.py",
  "pyproject.toml",
  "setup.py",
  "setup.cfg",
  "conftest.py",
  "sitecustomize.py",
  "usercustomize.py",
  "tox.ini",
  "noxfile.py",
  "Cargo.toml",
  "build.rs",
  "Rakefile",
  "Gemfile",
  ".pre-commit-config.yaml",
  "Dockerfile",
  "Justfile",
  "justfile",
  "Taskfile.yml",
  "build.gradle",
  "build.gradle.kts",
  "settings.gradle",
  "pom.xml",
  "CMakeLists.txt",
  ".babelrc",
  ".mocharc.js",
  ".mocharc.cjs",
  "deno.json",
  "bunfig.toml",
]);
/** Path segments under which every file is read as code or configuration that runs programs. */
const SENSITIVE_SEGMENTS = new Set([
  ".git",
  ".husky",
  "node_modules",
  ".config",
  ".ssh",
  ".cargo",
  ".bundle",
  ".npm",
  ".local",
  ".vscode",
  ".idea",
  ".direnv",
  "hooks",
]);

/** True when a write to `path` can change what a later program in the same script executes. */
export function isSensitivePath(path: string): boolean {
  if (path.startsWith("/etc/") || path === "/etc") return true;
  if (/^\/(usr|bin|sbin|lib|lib64|opt)\//.test(path)) return true;
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const base = parts.at(-1) ?? "";
  if (SENSITIVE_BASENAMES.has(base)) return true;
  if (
    /\.config\.(c|m)?(j|t)sx?$/.test(base) ||
    /^\.?(eslint|prettier|babel|jest|vitest|vite|webpack|rollup|postcss|tailwind)rc/.test(base)
  )
    return true;
  if (/^\.?(bash|zsh|ksh)rc$|^\.git/.test(base)) return true;
  return parts.slice(0, -1).some((p) => SENSITIVE_SEGMENTS.has(p)) || base === ".git";
}

/**
 * GNU sed: understood unless the script can run a command (`e`, the `s///e` flag) or write a
 * file (`w`, `W`, the `s///w` flag). Parsed command by command; anything unclear is a risk.
 */
export function sedScriptRisk(script: string): string | undefined {
  let i = 0;
  const n = script.length;
  const fail = (why: string) => `sed script ${why}`;
  const skipSpace = () => {
    while (i < n && /[\s;]/.test(script[i] as string)) i++;
  };
  const skipRegex = (delim: string): boolean => {
    while (i < n && script[i] !== delim) {
      if (script[i] === "\\") i++;
      else if (script[i] === "\n") return false;
      i++;
    }
    if (i >= n) return false;
    i++;
    return true;
  };
  const address = (): boolean => {
    if (/[0-9$]/.test(script[i] ?? "")) {
      while (i < n && /[0-9$~+]/.test(script[i] as string)) i++;
      return true;
    }
    if (script[i] === "/") {
      i++;
      if (!skipRegex("/")) return false;
      while (/[IM]/.test(script[i] ?? "")) i++;
      return true;
    }
    if (script[i] === "\\") {
      const d = script[i + 1];
      if (d === undefined) return false;
      i += 2;
      if (!skipRegex(d)) return false;
      while (/[IM]/.test(script[i] ?? "")) i++;
      return true;
    }
    return true;
  };
  for (let guard = 0; guard < 10_000; guard++) {
    skipSpace();
    if (i >= n) return undefined;
    if (script[i] === "#") {
      while (i < n && script[i] !== "\n") i++;
      continue;
    }
    if (!address()) return fail("has an address that is not understood");
    if (script[i] === ",") {
      i++;
      if (!address()) return fail("has an address that is not understood");
    }
    while (script[i] === " " || script[i] === "!") i++;
    const c = script[i];
    if (c === undefined) return fail("ends after an address");
    i++;
    if ("{}=dDgGhHlnNpPqQxz".includes(c)) {
      if ((c === "q" || c === "Q" || c === "l") && /[0-9]/.test(script[i] ?? ""))
        while (/[0-9]/.test(script[i] ?? "")) i++;
      continue;
    }
    if ("bt:T".includes(c)) {
      while (i < n && !/[;\n}]/.test(script[i] as string)) i++;
      continue;
    }
    if ("aicrRvF".includes(c)) {
      // text or a file name up to the end of the line
      while (i < n && script[i] !== "\n") {
        if (script[i] === "\\") i++;
        i++;
      }
      continue;
    }
    if (c === "e") return fail("runs a command (e)");
    if (c === "w" || c === "W") return fail("writes a file (w)");
    if (c === "s" || c === "y") {
      const d = script[i];
      if (d === undefined || d === "\n" || d === "\\")
        return fail("has a malformed s or y command");
      i++;
      if (!skipRegex(d) || !skipRegex(d)) return fail("has an unterminated s or y command");
      if (c === "y") continue;
      while (i < n && /[gpiImMe0-9w]/.test(script[i] as string)) {
        if (script[i] === "e") return fail("runs a command (s///e)");
        if (script[i] === "w") return fail("writes a file (s///w)");
        i++;
      }
      continue;
    }
    return fail(`uses a command (${c}) that is not understood`);
  }
  return fail("is too long to analyse");
}

/** awk: understood unless the program can run commands, write files or load code. */
export function awkScriptRisk(program: string): string | undefined {
  if (/\bsystem\s*\(|\|/.test(program)) return "awk program runs commands (system, |)";
  if (/@(load|include|namespace)|\bextension\s*\(/.test(program)) return "awk program loads code";
  // `print > file` writes; a comparison looks the same to a scanner, so any > outside strings counts
  if (program.replace(/"(?:[^"\\]|\\.)*"/g, '""').includes(">"))
    return "awk program may write files (print > file)";
  return undefined;
}
