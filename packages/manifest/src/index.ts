export {
  isManifestError,
  ManifestError,
  type ManifestErrorCode,
  type ManifestErrorOptions,
} from "./errors.ts";
