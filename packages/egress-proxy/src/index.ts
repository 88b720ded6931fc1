/**
 * @bottlekit/egress-proxy: the bottle's only way out.
 *
 * For the gateway (the LLM hook), the exact types, defined in ./types.ts:
 *
 *   type LlmHandler = (req: IncomingMessage, res: ServerResponse, ctx: LlmContext) => void | Promise<void>;
 *   interface LlmContext { sessionId: string; bottle: string; agent?: string; host: string; port: number }
 *
 * `createProxyHost({ llmHandler })` hands every intercepted request whose CONNECT host is in the
 * session's `llmHosts` to the handler, after the cutoff and Host checks and before any route,
 * placeholder or DLP stage: `req` is the agent's decrypted HTTP/1.1 request (path with query,
 * headers as the agent sent them, body unread), `host` the CONNECT host (= SNI = Host), `port` the
 * CONNECT port. The handler must answer `res`; a throw or rejection becomes a 502 (or a dropped
 * connection once headers are out). `cutoff` closes the agent's connection under a running
 * handler. Counters for `/metrics`: `host.metricsNow()`; audit: `onAudit`.
 */
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
  ProxyService,
  RegisterResult,
  ServiceContext,
  SessionDetails,
  SessionSpec,
  SessionSummary,
  SessionTarget,
  SupervisedRequest,
} from "./types.ts";
