export {
  isLocalAgentWarningError,
  LocalAgentWarningError,
  type LocalAgentWarningErrorCode,
  type LocalAgentWarningErrorOptions,
} from "./errors.ts";
