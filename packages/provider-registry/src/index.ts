export {
  checkRegistryConfig,
  type ModelProviderEntryInput,
  modelAliasSchema,
  modelProviderEntrySchema,
  type ProviderEntry,
  type RegistryConfig,
  type RegistryConfigData,
  type RegistryConfigInput,
  registryConfigJsonSchema,
  registryConfigSchema,
  type ValidationResult,
  validateRegistryConfig,
} from "./config.ts";
export { costOf } from "./cost.ts";
export {
  isProviderRegistryError,
  ProviderRegistryError,
  type ProviderRegistryErrorCode,
  type ProviderRegistryErrorOptions,
} from "./errors.ts";
export {
  GENAI_PRICES_SOURCE,
  GENAI_PRICES_VERSION,
  modelTablesLoaded,
  preloadModelTables,
  TOKENLENS_SOURCE,
  TOKENLENS_VERSION,
} from "./models.ts";
export {
  loadModelOverrides,
  type ModelOverride,
  ModelOverrides,
  type ModelOverridesInput,
  modelOverridesSchema,
  parseModelOverrides,
} from "./overrides.ts";
export {
  getProvider,
  isLocalAgentInterface,
  listLocalAgentInterfaces,
  listProviders,
} from "./providers.ts";
export {
  createRegistry,
  familyOf,
  type ListedModel,
  type Registry,
  type RegistryOptions,
  type ResolveOptions,
} from "./registry.ts";
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
  type PriceTier,
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
export { createUsageTap, parseUsage, type UsageTap, type UsageTapOptions } from "./usage.ts";
