export {
  isProviderRegistryError,
  ProviderRegistryError,
  type ProviderRegistryErrorCode,
  type ProviderRegistryErrorOptions,
} from "./errors.ts";
export {
  getProvider,
  isLocalAgentInterface,
  listLocalAgentInterfaces,
  listProviders,
} from "./providers.ts";
export {
  type AuthStyle,
  type Cost,
  type EndpointInfo,
  type ExplainStep,
  type Explanation,
  type LocalAgentCapabilities,
  type ModelInfo,
  type ModelLimits,
  type ModelPrice,
  type Provenance,
  type ProviderAuth,
  type ProviderInfo,
  type ProviderKind,
  type ResolvedAuth,
  type ResolvedModel,
  type ResolveStep,
  type Usage,
  type UsageResult,
  WIRE_APIS,
  type WireApi,
} from "./types.ts";
