/**
 * @bottlekit/approvals: a bottled agent asks for what it needs through MCP (served by the host
 * controller's proxy at a reserved host, identity = the proxy session), the operator decides from
 * one queue, and approvals become live, scoped and expiring changes or a manifest diff.
 */
export {
  applyGrants,
  hostMatches,
  type SessionState,
  validateRoute,
  wideningOf,
} from "./change.ts";
export {
  type ApprovalsConfig,
  type ApprovalsConfigInput,
  approvalsConfigSchema,
  loadConfig,
  type ProviderEntry,
  parseDuration,
  resolveConfig,
} from "./config.ts";
export {
  ApprovalsError,
  type ApprovalsErrorCode,
  type ApprovalsErrorOptions,
  isApprovalsError,
} from "./errors.ts";
export { type DecideOptions, type DecideResult, decide, manifestPreview } from "./operator.ts";
export { persistChange, persistedText, unifiedDiff } from "./persist.ts";
export {
  APPROVALS_HOST,
  APPROVALS_URL,
  type Approvals,
  type ApprovalsOptions,
  createApprovals,
  type SyncResult,
} from "./service.ts";
export { runStdioShim, type ShimOptions } from "./shim.ts";
export { ApprovalStore, type Decision, defaultDbPath } from "./store.ts";
export { TOOL_NAMES } from "./tool-names.ts";
export type {
  AuditRecord,
  Change,
  ChangeKind,
  Proposal,
  ProposalStatus,
  Scope,
  Widening,
} from "./types.ts";
