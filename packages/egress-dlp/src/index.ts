export {
  EgressDlpError,
  type EgressDlpErrorCode,
  type EgressDlpErrorOptions,
  isEgressDlpError,
} from "./errors.ts";
export {
  createInjectionScanner,
  DISCLOSURE_PHRASES,
  type InjectionOptions,
  type InjectionScanner,
  JAILBREAK_PHRASES,
  scanInbound,
} from "./injection.ts";
export type { KnownSecret } from "./known.ts";
export {
  createPlaceholderResolver,
  PLACEHOLDER_PATTERN,
  type PlaceholderFailure,
  type PlaceholderRequest,
  type PlaceholderResolver,
  type PlaceholderResolverOptions,
  type ResolvedUse,
  type ResolveResult,
  shapePlaceholder,
} from "./placeholder.ts";
export {
  type Decision,
  type EnforceOptions,
  enforceOutbound,
  type OutboundRequest,
  type RequestScan,
  redactRequest,
  requestSurfaces,
  routeDetectors,
  type SupervisionAnswer,
  type SupervisionProposal,
  type Surface,
  type SurfaceLimits,
  scanRequest,
} from "./request.ts";
export {
  headerMatchSchema,
  INBOUND_DETECTORS,
  type InboundDetector,
  type MatchRouteResult,
  matchRoute,
  normalizeHost,
  type OnMatch,
  OUTBOUND_DETECTORS,
  type OutboundDetector,
  pathMatchSchema,
  type Route,
  type RouteInput,
  type RouteMatch,
  type RouteMatchReason,
  type RouteRequest,
  type RouteValidation,
  routeAuthSchema,
  routeDlpSchema,
  routeJsonSchema,
  routeMatchSchema,
  routeSchema,
  routesSchema,
  validateRoutes,
} from "./route.ts";
export { boundedRegexProblem, TOKEN_RULES, type TokenRule } from "./rules.ts";
export {
  createScanner,
  type DetectorName,
  type Finding,
  type Scanner,
  type ScannerOptions,
  type ScanResult,
  type Severity,
} from "./scan.ts";
export {
  createStreamScanner,
  type StreamOptions,
  type StreamScanner,
  type TextScanner,
} from "./stream.ts";
