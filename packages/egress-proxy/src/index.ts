export { BottleCa } from "./ca.ts";
export {
  type ControlClient,
  type ControlServer,
  connectControl,
  defaultControlSocketPath,
  startControlServer,
} from "./control.ts";
export {
  EgressProxyError,
  type EgressProxyErrorCode,
  type EgressProxyErrorOptions,
  isEgressProxyError,
} from "./errors.ts";
export { createProxyHost, defaultHome, type ProxyHost } from "./host.ts";
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
