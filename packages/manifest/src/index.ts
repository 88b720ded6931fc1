export {
  type Dirs,
  type Listing,
  type Locations,
  listManifests,
  type ManifestRef,
  resolveDirs,
} from "./discover.ts";
export {
  classifyEnv,
  displayEnv,
  type EnvValue,
  LaunchEnv,
  type MaterializeOptions,
  materializeEnv,
} from "./env.ts";
export {
  errorFromIssues,
  formatIssue,
  isManifestError,
  ManifestError,
  type ManifestErrorCode,
  type ManifestErrorOptions,
  type ManifestIssue,
} from "./errors.ts";
export {
  type EgressChange,
  type ExplainedKey,
  type Explanation,
  egressChanges,
  explainAgent,
  explainResolved,
  renderExplanation,
  summarizeRoute,
} from "./explain.ts";
export { type KeyPath, type ParsedFile, parseManifestText, pathToString } from "./frontmatter.ts";
export { type LoadedFile, ManifestLoader } from "./load.ts";
export type { Provenance, SourceRef } from "./merge.ts";
export { ENV_NAME_PATTERN, NAME_PATTERN } from "./names.ts";
export {
  type BottleNode,
  BottleResolver,
  type EffectiveAgentConfig,
  type EffectiveBottleConfig,
  findAgent,
  type ResolvedAgent,
  type ResolvedBottle,
  type ResolveOptions,
  redactConfig,
  resolveAgent,
  resolveBottle,
} from "./resolve.ts";
export {
  AGENT_PROVIDERS,
  type AgentFrontmatter,
  type AgentProvider,
  type AgentProviderName,
  agentJsonSchema,
  agentSchema,
  type BottleFrontmatter,
  type BudgetEntry,
  bottleJsonSchema,
  bottleSchema,
  CUTOFF_POLICIES,
  type CutoffPolicy,
  type GitIdentity,
} from "./schema.ts";
export {
  type ManifestKind,
  type TextValidation,
  type ValidationResult,
  validateFrontmatter,
  validateManifestText,
} from "./validate.ts";
export {
  type FileReport,
  type TreeValidation,
  type ValidateOptions as ValidatePathsOptions,
  validatePaths,
} from "./validate-tree.ts";
