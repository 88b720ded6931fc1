import { isCodedError } from "./errors.ts";
import { EXIT, exitCodeForErrorCode } from "./exit.ts";
import { writeJson } from "./stdio.ts";

export interface RenderOptions {
  /** The bin's name, printed before the message: `bottle: …`. */
  program: string;
  stderr: NodeJS.WritableStream;
  /** With `--json`, known errors are also written here as `{ "error": { code, message, hint } }`. */
  stdout?: NodeJS.WritableStream;
  json?: boolean;
  /** The CLI's own code → exit code mapping; falls back to {@link exitCodeForErrorCode}. */
  exitCodeOf?: (code: string) => number | undefined;
  /** Where to report bugs, named in the line under an unexpected error's stack. */
  bugReportUrl?: string;
}

interface UsageErrorLike {
  name: string;
  code: string;
  exitCode?: number;
  message: string;
}

/**
 * commander's errors (unknown option, missing argument, --help, --version), known by their
 * `commander.*` code: a minified bundle renames the class, so its name cannot be relied on.
 */
function isCommanderError(error: unknown): error is UsageErrorLike {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("commander.");
}

/**
 * The one place a bin turns an error into output and an exit code. Known errors (anything with
 * a string `code`) are one line `program: message`, then `hint: …` when there is one, and the
 * exit code of their code; commander's usage errors (already printed by commander) exit 2, its
 * --help/--version exit 0. Only an unexpected error prints a stack, with a bug-report line.
 */
export function renderCliError(error: unknown, options: RenderOptions): number {
  const { program, stderr } = options;
  if (isCommanderError(error)) {
    if (error.code === "commander.helpDisplayed" || error.code === "commander.version")
      return EXIT.ok;
    if (error.code === "commander.help") return EXIT.ok;
    stderr.write(`Run '${program} --help' to see the commands and options.\n`);
    return EXIT.usage;
  }
  if (isCodedError(error)) {
    stderr.write(`${program}: ${error.message}\n`);
    if (error.hint && !error.message.includes(error.hint)) stderr.write(`hint: ${error.hint}\n`);
    if (options.json && options.stdout) {
      writeJson(options.stdout, {
        error: { code: error.code, message: error.message, hint: error.hint ?? null },
      });
    }
    return options.exitCodeOf?.(error.code) ?? exitCodeForErrorCode(error.code);
  }
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  stderr.write(`${program}: unexpected error\n${stack}\n`);
  stderr.write(
    `This is a bug in bottlekit; please report it${
      options.bugReportUrl ? ` at ${options.bugReportUrl}` : ""
    } with the output above.\n`,
  );
  return EXIT.failure;
}
