export {
  isProviderRegistryError,
  ProviderRegistryError,
  type ProviderRegistryErrorCode,
  type ProviderRegistryErrorOptions,
} from "./errors.ts";
