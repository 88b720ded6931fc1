/**
 * Amendments ("don't ask again"): append one `prefix_rule` line to the project's or the user's
 * `default.rules`, under a file lock, idempotently. Prefixes that would allow arbitrary code
 * (shells with -c, interpreters with -e, wrappers such as env or sudo, bare git, …) are refused.
 */
import { appendFile, mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Decision } from "./decision.ts";
import { isDecision } from "./decision.ts";
import { ExecPolicyError } from "./errors.ts";

export interface AmendOptions {
  scope: "project" | "user";
  /** Project root for `scope: "project"` (default: `process.cwd()`); the file is `<project>/.bottlekit/rules/default.rules`. */
  projectDir?: string;
  /** bottlekit home for `scope: "user"` (default: `$BOTTLEKIT_HOME` or `~/.bottlekit`); the file is `<home>/rules/default.rules`. */
  home?: string;
  /** How long to wait for the lock, in ms (default 5000). */
  lockTimeoutMs?: number;
}

export interface AmendResult {
  file: string;
  line: string;
  /** False when the identical line was already present. */
  written: boolean;
}

/** Programs that may never be amended on their own or as the start of a prefix (they run other programs). */
const WRAPPER_PROGRAMS = new Set([
  "env",
  "sudo",
  "doas",
  "su",
  "xargs",
  "exec",
  "command",
  "nohup",
  "timeout",
  "nice",
  "time",
  "stdbuf",
  "setsid",
  "eval",
  "source",
  ".",
]);
/** Programs that may not be amended alone (the whole tool would be allowed). */
const BARE_BANNED = new Set([
  "git",
  "bash",
  "sh",
  "zsh",
  "dash",
  "ksh",
  "fish",
  "python",
  "python2",
  "python3",
  "node",
  "deno",
  "bun",
  "perl",
  "ruby",
  "php",
  "lua",
  "pwsh",
  "powershell",
  "osascript",
  "npx",
  "pnpx",
  "bunx",
  "docker",
  "kubectl",
  "ssh",
  "curl",
  "wget",
  "rm",
]);
/** Interpreter flags whose next argument is code. */
const CODE_FLAGS: Record<string, readonly string[]> = {
  bash: ["-c", "-lc", "-ic", "-lic", "-cl", "-ilc"],
  sh: ["-c", "-lc"],
  zsh: ["-c", "-lc"],
  dash: ["-c"],
  ksh: ["-c"],
  fish: ["-c", "--command"],
  python: ["-c"],
  python2: ["-c"],
  python3: ["-c"],
  node: ["-e", "--eval", "-p", "--print"],
  deno: ["eval"],
  bun: ["-e", "--eval"],
  perl: ["-e", "-E"],
  ruby: ["-e"],
  php: ["-r"],
  lua: ["-e"],
  pwsh: ["-c", "-Command", "-command"],
  powershell: ["-c", "-Command", "-command"],
  osascript: ["-e"],
};

/** Why `prefix` may not be amended, or undefined when it may. */
export function amendmentRefusal(prefix: readonly string[]): string | undefined {
  if (prefix.length === 0) return "the prefix is empty";
  if (prefix.some((t) => t === "")) return "a token of the prefix is empty";
  if (prefix.some((t) => /[\n\r\0]/.test(t))) return "a token contains a newline or NUL";
  const program = (prefix[0] as string).slice((prefix[0] as string).lastIndexOf("/") + 1);
  if (WRAPPER_PROGRAMS.has(program))
    return `${program} runs other commands; amend the wrapped command instead`;
  if (prefix.length === 1 && BARE_BANNED.has(program))
    return `allowing every ${program} command is too broad; add a subcommand`;
  const flags = CODE_FLAGS[program];
  if (flags && prefix.slice(1).some((t) => flags.includes(t)))
    return `${program} ${prefix.find((t) => flags.includes(t))} runs arbitrary code`;
  return undefined;
}

/** The Starlark line written for an amendment. */
export function amendmentLine(prefix: readonly string[], decision: Decision): string {
  return `prefix_rule(pattern=[${prefix.map((t) => JSON.stringify(t)).join(", ")}], decision="${decision}")`;
}

export function amendmentFile(options: AmendOptions): string {
  if (options.scope === "project")
    return join(options.projectDir ?? process.cwd(), ".bottlekit", "rules", "default.rules");
  const home = options.home ?? process.env.BOTTLEKIT_HOME ?? join(homedir(), ".bottlekit");
  return join(home, "rules", "default.rules");
}

async function withLock<T>(file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const h = await open(lock, "wx");
      await h.writeFile(String(process.pid));
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // a lock older than 30 s is left over from a crashed writer
      const s = await stat(lock).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > 30_000) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new ExecPolicyError("E_LOCKED", `could not lock ${file} within ${timeoutMs} ms`, {
          hint: `another process holds ${lock}; remove it if no amendment is running`,
        });
      }
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * Appends `prefix_rule(pattern=[…], decision="…")` to the scope's `default.rules`, unless the
 * identical line is already there. Refuses banned prefixes with `E_AMEND_REFUSED`.
 */
export async function amend(
  prefix: readonly string[],
  decision: Decision,
  options: AmendOptions,
): Promise<AmendResult> {
  if (!isDecision(decision))
    throw new ExecPolicyError("E_INVALID_INPUT", `invalid decision: ${String(decision)}`, {
      hint: "use allow, prompt or forbidden",
    });
  const refusal = amendmentRefusal(prefix);
  if (refusal)
    throw new ExecPolicyError(
      "E_AMEND_REFUSED",
      `refusing to amend ${JSON.stringify(prefix.join(" "))}: ${refusal}`,
    );
  const file = amendmentFile(options);
  const line = amendmentLine(prefix, decision);
  await mkdir(dirname(file), { recursive: true });
  return withLock(file, options.lockTimeoutMs ?? 5000, async () => {
    let existing = "";
    try {
      existing = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (existing.split("\n").some((l) => l.trim() === line)) return { file, line, written: false };
    const sep = existing === "" || existing.endsWith("\n") ? "" : "\n";
    await appendFile(file, `${sep}${line}\n`, "utf8");
    return { file, line, written: true };
  });
}
