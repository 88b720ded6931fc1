export { type ClientApi, errorJson } from "./apis.ts";
export { type CliIo, EXIT, run } from "./cli.ts";
export {
  DEFAULT_LISTEN,
  type RunningGateway,
  type StartOptions,
  startGateway,
  zeroConfigProviders,
} from "./compose.ts";
export {
  type ConfigValidation,
  type GatewayConfig,
  loadGatewayConfig,
  parseListen,
  validateGatewayConfig,
} from "./config.ts";
export type { DlpFinding, GatewayDlp, InboundScan, OutboundVerdict } from "./dlp-types.ts";
export {
  GatewayError,
  type GatewayErrorCode,
  type GatewayErrorOptions,
  isGatewayError,
} from "./errors.ts";
export { GatewayMetrics } from "./metrics.ts";
export {
  type CutoffNotice,
  createGateway,
  type Gateway,
  type GatewayLogEvent,
  type GatewayOptions,
  type MeteredUsage,
  type Metering,
  type ProxiedCall,
  type UsageTap,
} from "./server.ts";
