export {
  type AmendOptions,
  type AmendResult,
  amend,
  amendmentFile,
  amendmentLine,
  amendmentRefusal,
} from "./amend.ts";
export { CACHE_DIR_ENV, cacheDirFromEnv } from "./cache-dir.ts";
export {
  type CheckOptions,
  type CheckResult,
  type CommandResult,
  checkArgv,
  checkCommand,
  checkCommandSync,
  checkShell,
  checkShellSync,
  explain,
  type MatchedRule,
  needsParser,
} from "./check.ts";
export { renderCodex } from "./codex-format.ts";
export { parseRulesFile } from "./codex-rules.ts";
export { type Decision, stricter } from "./decision.ts";
export { type Diagnostic, formatDiagnostic } from "./diagnostic.ts";
export {
  ExecPolicyError,
  type ExecPolicyErrorCode,
  type ExecPolicyErrorOptions,
  isExecPolicyError,
} from "./errors.ts";
export {
  type LoadedFile,
  type LoadOptions,
  type LoadResult,
  loadPolicyFiles,
  loadRulesDirectory,
  type PolicySource,
} from "./load.ts";
export { loadPolicySources } from "./load-sources.ts";
export {
  didYouMean,
  KNOWN_VALUE_OPTIONS,
  type PolicyFile,
  parseNativePolicy,
  policyFileSchema,
  policyJsonSchema,
  validatePolicyFile,
} from "./native-format.ts";
export {
  type MatchOptions,
  type NetworkRule,
  type PatternAlternative,
  type PatternPosition,
  Policy,
  type PrefixRule,
  type RuleException,
  type RuleMatch,
  type SourceLocation,
} from "./policy.ts";
export { isDangerousVariable, type ShellAnalysis, type ShellCommand } from "./shell/extract.ts";
export { isBashParserLoaded, loadBashParser } from "./shell/parser.ts";
