export {
  type AckInput,
  type AckLocation,
  type AckRecord,
  type AckState,
  ackFilePath,
  parseAck,
  type RevokeAckOptions,
  readAck,
  revokeAck,
  serializeAck,
  type WriteAckOptions,
  writeAck,
} from "./ack.ts";
export {
  detectLocalAgentProviders,
  interfacesOf,
  type LocalAgentEntry,
  type MatchedField,
} from "./detect.ts";
export {
  ACK_ENV_VAR,
  type Env,
  type InteractiveOptions,
  isCi,
  isInteractive,
  isTruthyEnvValue,
  resolveBottlekitHome,
  shouldUseColor,
  type TtyLike,
} from "./env.ts";
export {
  isLocalAgentWarningError,
  LocalAgentWarningError,
  type LocalAgentWarningErrorCode,
  type LocalAgentWarningErrorOptions,
} from "./errors.ts";
export {
  configFingerprint,
  type FingerprintInput,
  type LocalAgentSettingKey,
  type LocalAgentSettings,
  normalizeSettings,
  normalizeTools,
  SETTING_KEYS,
  UNSET_SETTINGS,
} from "./fingerprint.ts";
export {
  type AcknowledgeOptions,
  acknowledgePending,
  evaluateLocalAgentGate,
  type GateAction,
  type GateOptions,
  type GateRefusal,
  type GateResult,
  type PendingInterface,
  type PendingReason,
  pendingReasons,
  SETTING_REASON,
} from "./gate.ts";
export {
  type AskOptions,
  askToAcknowledge,
  isYes,
  type PromptStreams,
  type RunGateOptions,
  type RunGateOutcome,
  runLocalAgentGate,
} from "./prompt.ts";
export {
  DOCS_URL,
  describeSettings,
  type GateResultJson,
  gateResultJson,
  type RenderOptions,
  renderLocalAgentGate,
  renderLocalAgentWarning,
  sanitizeForTerminal,
  TRUST_TABLE,
} from "./render.ts";
export {
  envStem,
  type LocalAgentRuntime,
  type ResolveRuntimeOptions,
  type RuntimeOverride,
  resolveBinaryPath,
  resolveLocalAgentRuntime,
} from "./runtime.ts";
