export {
  EgressDlpError,
  type EgressDlpErrorCode,
  type EgressDlpErrorOptions,
  isEgressDlpError,
} from "./errors.ts";
