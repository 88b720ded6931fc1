export { type CliIo, EXIT, run } from "./cli.ts";
export {
  AgentCliError,
  type AgentCliErrorCode,
  type AgentCliErrorOptions,
  isAgentCliError,
} from "./errors.ts";
