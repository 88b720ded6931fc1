import { homedir } from "node:os";
import { join } from "node:path";

/** An environment mapping, passed in explicitly so callers (and tests) stay hermetic. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The environment variable that acknowledges every detected local-agent interface. */
export const ACK_ENV_VAR = "BOTTLEKIT_ACK_LOCAL_AGENTS";

const TRUTHY = new Set(["1", "true", "yes", "on"]);

/**
 * True when `value` is one of `1`, `true`, `yes`, `on` (surrounding whitespace ignored, any case).
 * Everything else, including unset and the empty string, is false.
 */
export function isTruthyEnvValue(value: string | undefined): boolean {
  if (value === undefined) return false;
  return TRUTHY.has(value.trim().toLowerCase());
}

/** `$BOTTLEKIT_HOME` when set and non-empty, else `~/.bottlekit`. */
export function resolveBottlekitHome(env: Env = process.env): string {
  const fromEnv = env["BOTTLEKIT_HOME"];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return fromEnv;
  return join(homedir(), ".bottlekit");
}

/** True when the `CI` variable is set to any non-empty value (fail closed: `CI=false` still counts). */
export function isCi(env: Env): boolean {
  const value = env["CI"];
  return value !== undefined && value !== "";
}

export interface TtyLike {
  readonly isTTY?: boolean;
}

export interface InteractiveOptions {
  stdin?: TtyLike;
  stdout?: TtyLike;
  env?: Env;
}

/**
 * A run is interactive only when both stdin and stdout are terminals and `CI` is not set.
 * Anything else is unattended, and unattended runs never prompt.
 */
export function isInteractive(options: InteractiveOptions = {}): boolean {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const env = options.env ?? process.env;
  return stdin.isTTY === true && stdout.isTTY === true && !isCi(env);
}

/**
 * Whether to colour output written to `stream`: never when NO_COLOR is non-empty or TERM is
 * `dumb`; always when FORCE_COLOR is set to anything but `0`/`false`; otherwise only on a TTY.
 */
export function shouldUseColor(stream: TtyLike, env: Env = process.env): boolean {
  const noColor = env["NO_COLOR"];
  if (noColor !== undefined && noColor !== "") return false;
  const force = env["FORCE_COLOR"];
  if (force !== undefined) {
    const f = force.trim().toLowerCase();
    if (f === "0" || f === "false") return false;
    return true;
  }
  if (env["TERM"] === "dumb") return false;
  return stream.isTTY === true;
}
