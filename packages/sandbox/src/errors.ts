import { CodedError, type CodedErrorOptions } from "@bottlekit/diagnostics";

/** Machine-readable error codes of @bottlekit/sandbox. Callers branch on these, never on message text. */
export type SandboxErrorCode =
  /** The spec is invalid (relative path, bad env name, overlapping paths…); nothing was started. */
  | "E_INVALID_SPEC"
  /** The platform has no bubblewrap sandbox (anything but Linux, or an unsupported CPU). */
  | "E_UNSUPPORTED_PLATFORM"
  /** `bwrap` is not installed or not on PATH. */
  | "E_BWRAP_MISSING"
  /** Running as root and no unprivileged account can be used for the agent. */
  | "E_ROOT_REFUSED"
  /** The sandbox could not be prepared or started. */
  | "E_SPAWN"
  /** The startup probe found a hole (or could not run); the agent was not started. */
  | "E_PROBE_FAILED";

export type SandboxErrorOptions = CodedErrorOptions;

/** The one error class thrown by @bottlekit/sandbox (a diagnostics CodedError: `code`, `hint`, `cause`). */
export class SandboxError extends CodedError<SandboxErrorCode> {
  override readonly name = "SandboxError";
}

/** True when `value` is a SandboxError (also across duplicated module copies). */
export function isSandboxError(value: unknown): value is SandboxError {
  return value instanceof Error && value.name === "SandboxError" && "code" in value;
}
