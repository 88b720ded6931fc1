/** Machine-readable error codes of @bottlekit/agentcli. Callers branch on these, never on message text. */
export type AgentCliErrorCode = "E_INVALID_INPUT" | "E_USAGE" | "E_INTERNAL";

export interface AgentCliErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/agentcli. */
export class AgentCliError extends Error {
  override readonly name = "AgentCliError";
  readonly code: AgentCliErrorCode;
  readonly hint: string | undefined;

  constructor(code: AgentCliErrorCode, message: string, options: AgentCliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** True when `value` is a AgentCliError (also across duplicated module copies). */
export function isAgentCliError(value: unknown): value is AgentCliError {
  return value instanceof Error && value.name === "AgentCliError" && "code" in value;
}
