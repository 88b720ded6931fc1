import { CodedError } from "@bottlekit/diagnostics";

/** Machine-readable error codes of @bottlekit/agentcli. Callers branch on these, never on message text. */
export type AgentCliErrorCode =
  /** A flag, argument or prompt is missing or malformed (exit 2). */
  | "E_USAGE"
  /** A file the user gave (tools.json, policy, prompt file) is invalid (exit 2). */
  | "E_INVALID_INPUT"
  /** The model endpoint failed after the retries (exit 1). */
  | "E_HTTP"
  /** The gateway refused the call on a budget, or the agent's own `--max-tokens` cap was reached (exit 3). */
  | "E_BUDGET"
  /** The gateway refused the call on policy (DLP) (exit 3). */
  | "E_POLICY"
  /** Something that should not happen (exit 1). */
  | "E_INTERNAL";

export interface AgentCliErrorOptions {
  cause?: unknown;
  /** A suggested fix, shown after the message. */
  hint?: string;
}

/** The one error class thrown by @bottlekit/agentcli. */
export class AgentCliError extends CodedError<AgentCliErrorCode> {
  override readonly name = "AgentCliError";
}

/** True when `value` is a AgentCliError (also across duplicated module copies). */
export function isAgentCliError(value: unknown): value is AgentCliError {
  return value instanceof Error && value.name === "AgentCliError" && "code" in value;
}

/** The exit code an error ends the run with. */
export function exitCodeOf(code: AgentCliErrorCode): number {
  if (code === "E_USAGE" || code === "E_INVALID_INPUT") return 2;
  if (code === "E_BUDGET" || code === "E_POLICY") return 3;
  return 1;
}
