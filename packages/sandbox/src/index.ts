export {
  buildSandboxEnv,
  CA_BUNDLE_ENV_NAMES,
  CA_EXTRA_ENV_NAMES,
  ENV_ALLOWLIST,
  type EnvInput,
  PROXY_ENV_NAMES,
  RESERVED_ENV_NAMES,
} from "./env.ts";
export {
  isSandboxError,
  SandboxError,
  type SandboxErrorCode,
  type SandboxErrorOptions,
} from "./errors.ts";
export {
  DEFAULT_AGENT_ACCOUNT,
  type HostOptions,
  inspectHost,
  resolveAgentAccount,
  which,
} from "./host.ts";
export {
  type Bind,
  DEFAULT_PROXY_PORT,
  type HostFacts,
  planSandbox,
  SANDBOX_HOME,
  type SandboxPlan,
  type SandboxSpec,
} from "./plan.ts";
export { PROBE_REFUSED_EXIT, PROXY_SOCKET_IN_SANDBOX, RUN_DIR } from "./scripts.ts";
export {
  ARCH_TABLES,
  buildSeccompFilter,
  currentSeccompArch,
  describeSeccomp,
  evaluateSeccomp,
  SECCOMP_ACTION,
  SECCOMP_RULES,
  type SeccompArch,
  type SeccompRule,
  seccompFilter,
} from "./seccomp.ts";
export {
  type EnvChecker,
  type LateSetup,
  type ProbeCheck,
  type ProbeReport,
  processTree,
  type SandboxExit,
  type SandboxProcess,
  type StartOptions,
  startSandbox,
} from "./spawn.ts";
