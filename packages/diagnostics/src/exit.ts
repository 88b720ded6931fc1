/** The exit codes of every bottlekit CLI. */
export const EXIT = { ok: 0, failure: 1, usage: 2, policy: 3, interrupted: 130 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The "Exit codes:" block each CLI appends to its `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    failure
  2    usage error or invalid input
  3    policy violation (forbidden, budget exceeded, cut off)
  130  interrupted`;

/**
 * The default mapping from an error code to an exit code, shared by the CLIs: usage and
 * invalid-input codes are 2, policy and budget codes are 3, everything else 1. A CLI may pass its
 * own mapping to {@link renderCliError} for codes this does not know.
 */
export function exitCodeForErrorCode(code: string): ExitCode {
  const c = code.toUpperCase();
  if (
    c === "E_USAGE" ||
    c.startsWith("E_INVALID") ||
    c === "E_CONFIG" ||
    c === "E_PARSE" ||
    c === "E_SCHEMA" ||
    c === "E_NOT_FOUND" ||
    c === "E_UNKNOWN"
  ) {
    return EXIT.usage;
  }
  if (
    c.startsWith("E_POLICY") ||
    c.startsWith("E_BUDGET") ||
    c === "E_FORBIDDEN" ||
    c === "E_CUT_OFF"
  ) {
    return EXIT.policy;
  }
  return EXIT.failure;
}
