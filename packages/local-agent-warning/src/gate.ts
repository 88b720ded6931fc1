import { type AckInput, type AckRecord, readAck, writeAck } from "./ack.ts";
import { detectLocalAgentProviders, type LocalAgentEntry } from "./detect.ts";
import {
  ACK_ENV_VAR,
  type Env,
  isCi,
  isInteractive,
  isTruthyEnvValue,
  type TtyLike,
} from "./env.ts";
import { comparableBinary, type LocalAgentSettingKey, SETTING_KEYS } from "./fingerprint.ts";
import {
  type LocalAgentRuntime,
  type RuntimeOverride,
  resolveLocalAgentRuntime,
} from "./runtime.ts";

/** What the caller should do about local-agent providers. */
export type GateAction = "none" | "acknowledged" | "already-acknowledged" | "warn" | "refuse";

/** Why an interface still needs an acknowledgement. */
export type PendingReason =
  | "new"
  | "binary-changed"
  | "permission-mode-changed"
  | "tools-changed"
  | "cwd-changed"
  | "home-changed"
  | "run-as-changed"
  | "configuration-changed";

/** The reason a changed setting gives. */
export const SETTING_REASON: Readonly<Record<LocalAgentSettingKey, PendingReason>> = {
  tools: "tools-changed",
  cwd: "cwd-changed",
  home: "home-changed",
  runAs: "run-as-changed",
};

/** One interface that is detected but not (or no longer) acknowledged. */
export interface PendingInterface extends LocalAgentRuntime {
  /** The config entries using this interface, in declaration order. */
  entries: LocalAgentEntry[];
  /** Why it needs an acknowledgement; for changes, what was acknowledged before. */
  reasons: PendingReason[];
  previous: AckRecord | undefined;
}

/** Machine-readable reason attached to a `refuse` decision. */
export interface GateRefusal {
  code: "E_LOCAL_AGENT_UNACKNOWLEDGED";
  message: string;
  /** Sorted interface ids that need an acknowledgement. */
  interfaces: string[];
  /** Why the run was treated as unattended. */
  unattendedBecause: "ci" | "no-tty" | "caller";
  hint: string;
}

export interface GateResult {
  action: GateAction;
  /** Every local-agent entry in the config, in declaration order. */
  detected: LocalAgentEntry[];
  /** Interfaces that still need an acknowledgement (empty for none/acknowledged/already-acknowledged). */
  pending: PendingInterface[];
  /** Interfaces recorded in the ack file by this call (only for `acknowledged`). */
  acknowledged: string[];
  /** Runtime (binary path, permission mode) per detected interface, sorted by interface. */
  runtimes: LocalAgentRuntime[];
  /** Set when action is `refuse`. */
  refusal?: GateRefusal;
  /** Whether the acknowledgement came from the flag or the env var (only for `acknowledged`). */
  acknowledgedBy?: "flag" | "env";
}

export interface GateOptions {
  /** The parsed config (e.g. YAML). Anything is tolerated. */
  config: unknown;
  /** `--ack-local-agents` was given. */
  ackFlag?: boolean;
  /** Environment used for BOTTLEKIT_ACK_LOCAL_AGENTS, CI, PATH, overrides; default process.env. */
  env?: Env;
  /** `$BOTTLEKIT_HOME`; default from env, then ~/.bottlekit. */
  home?: string;
  /**
   * Whether a person is there to answer. Default: stdin and stdout are TTYs. Even when true,
   * `CI` set in env makes the run unattended.
   */
  interactive?: boolean;
  /** The streams to test for a TTY when `interactive` is not given (default process stdin/stdout). */
  streams?: { stdin?: TtyLike; stdout?: TtyLike };
  /** Per-interface overrides of binary, permission mode and settings (keys: ids or aliases). */
  overrides?: Readonly<Record<string, RuntimeOverride>>;
  /** Working directory for relative binary paths. */
  cwd?: string;
  /** Clock, for tests. */
  now?: () => Date;
}

/**
 * Why `runtime` is not covered by `record` (empty when it is). Covered means the same
 * fingerprint: binary, permission mode, tools, working directory, HOME and run-as account all
 * equal. Each differing field is named; a fingerprint that differs otherwise gives
 * `configuration-changed`.
 */
export function pendingReasons(
  runtime: LocalAgentRuntime,
  record: AckRecord | undefined,
): PendingReason[] {
  if (record === undefined) return ["new"];
  const reasons: PendingReason[] = [];
  if (
    comparableBinary(record.binary, record.binaryPath) !==
    comparableBinary(runtime.binary, runtime.binaryPath)
  ) {
    reasons.push("binary-changed");
  }
  if (record.permissionMode !== runtime.permissionMode) reasons.push("permission-mode-changed");
  for (const key of SETTING_KEYS) {
    if (record.settings[key] !== runtime.settings[key]) reasons.push(SETTING_REASON[key]);
  }
  if (reasons.length === 0 && record.fingerprint !== runtime.fingerprint) {
    reasons.push("configuration-changed");
  }
  return reasons;
}

/** Turns runtimes into ack-file inputs. */
export function toAckInputs(runtimes: readonly LocalAgentRuntime[]): AckInput[] {
  return runtimes.map((r) => ({
    interface: r.interface,
    binary: r.binary,
    binaryPath: r.binaryPath,
    permissionMode: r.permissionMode,
    settings: r.settings,
  }));
}

/**
 * Decides what to do about local-agent providers in `config`. Never prints and never exits.
 *
 * 1. nothing detected -> `none`;
 * 2. `ackFlag` or a truthy BOTTLEKIT_ACK_LOCAL_AGENTS -> every detected interface is written to
 *    the ack file -> `acknowledged`;
 * 3. the ack file covers every detected interface with the same configuration (fingerprint:
 *    binary path, permission mode, tools, working directory, HOME, run-as account)
 *    -> `already-acknowledged`;
 * 4. otherwise, interactive -> `warn` (render the panel, ask once, then `acknowledgePending`);
 *    unattended (no TTY, or CI set) -> `refuse` with a machine-readable reason.
 *
 * Throws LocalAgentWarningError (E_ACK_WRITE, E_ACK_LOCKED) only when step 2 cannot record.
 */
export async function evaluateLocalAgentGate(options: GateOptions): Promise<GateResult> {
  const env = options.env ?? process.env;
  const detected = detectLocalAgentProviders(options.config);
  if (detected.length === 0) {
    return { action: "none", detected, pending: [], acknowledged: [], runtimes: [] };
  }
  const byInterface = new Map<string, LocalAgentEntry[]>();
  for (const entry of detected) {
    const list = byInterface.get(entry.interface);
    if (list) list.push(entry);
    else byInterface.set(entry.interface, [entry]);
  }
  const runtimes = [...byInterface.keys()].sort().map((iface) =>
    resolveLocalAgentRuntime(iface, {
      env,
      ...(options.overrides ? { overrides: options.overrides } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    }),
  );
  const location = { env, ...(options.home !== undefined ? { home: options.home } : {}) };

  const ackedBy = options.ackFlag ? "flag" : isTruthyEnvValue(env[ACK_ENV_VAR]) ? "env" : undefined;
  if (ackedBy !== undefined) {
    await writeAck(toAckInputs(runtimes), {
      ...location,
      ...(options.now ? { now: options.now } : {}),
    });
    return {
      action: "acknowledged",
      detected,
      pending: [],
      acknowledged: runtimes.map((r) => r.interface),
      runtimes,
      acknowledgedBy: ackedBy,
    };
  }

  const state = await readAck(location);
  const pending: PendingInterface[] = [];
  for (const runtime of runtimes) {
    const previous = state.get(runtime.interface);
    const reasons = pendingReasons(runtime, previous);
    if (reasons.length === 0) continue;
    pending.push({
      ...runtime,
      entries: byInterface.get(runtime.interface) ?? [],
      reasons,
      previous,
    });
  }
  if (pending.length === 0) {
    return { action: "already-acknowledged", detected, pending, acknowledged: [], runtimes };
  }

  const ci = isCi(env);
  const interactive = !ci && (options.interactive ?? isInteractive({ ...options.streams, env }));
  if (interactive) {
    return { action: "warn", detected, pending, acknowledged: [], runtimes };
  }
  const names = pending.map((p) => p.interface);
  return {
    action: "refuse",
    detected,
    pending,
    acknowledged: [],
    runtimes,
    refusal: {
      code: "E_LOCAL_AGENT_UNACKNOWLEDGED",
      message: `local-agent provider not acknowledged: ${names.join(", ")}; an unattended run cannot ask`,
      interfaces: names,
      unattendedBecause: ci ? "ci" : options.interactive === false ? "caller" : "no-tty",
      hint: `run once interactively and answer yes, or pass --ack-local-agents, or set ${ACK_ENV_VAR}=1`,
    },
  };
}

export interface AcknowledgeOptions {
  home?: string;
  env?: Env;
  now?: () => Date;
}

/**
 * Records the pending interfaces of a `warn` (or `refuse`) result, e.g. after the operator
 * answered yes. Returns the interfaces written.
 */
export async function acknowledgePending(
  result: GateResult,
  options: AcknowledgeOptions = {},
): Promise<string[]> {
  if (result.pending.length === 0) return [];
  await writeAck(toAckInputs(result.pending), {
    env: options.env ?? process.env,
    ...(options.home !== undefined ? { home: options.home } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return result.pending.map((p) => p.interface);
}
