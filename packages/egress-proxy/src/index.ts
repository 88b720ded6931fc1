export {
  EgressProxyError,
  type EgressProxyErrorCode,
  type EgressProxyErrorOptions,
  isEgressProxyError,
} from "./errors.ts";
export type {
  AuditDecision,
  AuditEvent,
  ControlApi,
  ControlRequest,
  ControlResponse,
  CredentialSource,
  CredentialSpec,
  LlmContext,
  LlmHandler,
  ProxyHostOptions,
  ProxyMetrics,
  RegisterResult,
  SessionSpec,
  SessionSummary,
  SessionTarget,
} from "./types.ts";
