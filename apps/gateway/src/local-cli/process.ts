// How a local agent CLI is run: the binary and permission mode the operator acknowledged
// (resolved exactly as @bottlekit/local-agent-warning resolves them), never as root, in its own
// process group so the whole tree can be killed, with a scrubbed environment.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { type LocalAgentRuntime, resolveLocalAgentRuntime } from "@bottlekit/local-agent-warning";

type Env = Readonly<Record<string, string | undefined>>;

/** Why a local agent CLI was not started (the bridge answers each as an error, named). */
export class LocalCliRefusal extends Error {
  override readonly name = "LocalCliRefusal";
  constructor(
    readonly code: "unacknowledged" | "not-loopback" | "as-root" | "no-binary" | "bad-config",
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The configuration of one local-agent interface, shown in the local-agent warning. */
export interface LocalCliConfig {
  interface: string;
  /** Absolute path of the binary (null: not found). */
  binaryPath: string | null;
  binary: string | null;
  permissionMode: string;
  /** `--tools` value: the built-in tools the agent may use ("" = none, the default). */
  tools: string;
  /** Working directory; unset = a private empty directory per request. */
  cwd: string | undefined;
  /** HOME of the agent; unset = the gateway's HOME, or the private directory under run-as. */
  home: string | undefined;
  /** The unprivileged account the CLI runs as when the gateway runs as root. */
  runAs: { uid: number; gid: number; name: string } | undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === "" ? undefined : t;
}

/** `uid:gid`, `uid`, or an account name (looked up with `id`). */
export function parseRunAs(value: string): { uid: number; gid: number; name: string } {
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (m) {
    const uid = Number(m[1]);
    return { uid, gid: m[2] !== undefined ? Number(m[2]) : uid, name: value };
  }
  if (!/^[a-z_][a-z0-9_.-]*\$?$/i.test(value))
    throw new LocalCliRefusal(
      "bad-config",
      `the run-as account "${value}" is not an account name or uid:gid`,
      "set <STEM>_RUN_AS to an unprivileged account (e.g. nobody) or uid:gid",
    );
  const id = (flag: string) => spawnSync("id", [flag, value], { encoding: "utf8" });
  const u = id("-u");
  const g = id("-g");
  if (u.status !== 0 || g.status !== 0)
    throw new LocalCliRefusal(
      "bad-config",
      `the run-as account "${value}" does not exist on this host`,
      "create it (useradd --system NAME) or name another unprivileged account",
    );
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), name: value };
}

/**
 * The configuration of `iface` from the gateway's environment: `<STEM>_BIN`,
 * `<STEM>_PERMISSION_MODE`, `<STEM>_TOOLS`, `<STEM>_CWD`, `<STEM>_HOME` and `<STEM>_RUN_AS`
 * (stem: `CLAUDE_CLI` for claude-cli), every one of them resolved and normalised by
 * @bottlekit/local-agent-warning exactly as its acknowledgement records them. Pass the `runtime`
 * the acknowledgement was checked against, so what runs is what was acknowledged.
 */
export function localCliConfig(
  iface: string,
  env: Env,
  _stem: string,
  runtime: LocalAgentRuntime = resolveLocalAgentRuntime(iface, { env }),
): LocalCliConfig {
  const runAs = nonEmpty(runtime.settings.runAs ?? undefined);
  return {
    interface: runtime.interface,
    binary: runtime.binary,
    binaryPath: runtime.binaryPath,
    permissionMode: runtime.permissionMode,
    tools: runtime.settings.tools ?? "",
    cwd: runtime.settings.cwd ?? undefined,
    home: runtime.settings.home ?? undefined,
    runAs: runAs === undefined ? undefined : parseRunAs(runAs),
  };
}

/**
 * Variables the agent keeps: locale, proxy and CA settings, and its own vendor's (`ANTHROPIC_*`,
 * `CLAUDE_*` but not the bridge's `CLAUDE_CLI_*`). Other providers' keys never reach it.
 */
const KEEP = new Set([
  "PATH",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "NO_PROXY",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "DISABLE_AUTOUPDATER",
  "DISABLE_TELEMETRY",
]);

export function agentEnv(env: Env, prefixes: readonly string[], stem: string, home: string) {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || k.startsWith(`${stem}_`)) continue;
    if (KEEP.has(k) || prefixes.some((p) => k.startsWith(p))) out[k] = v;
  }
  out["HOME"] = home;
  return out;
}

/** The caller's uid (a seam for the refusal test on a machine where tests do not run as root). */
export type UidSource = () => number | undefined;

/**
 * Spawns the CLI in its own process group. Under root it runs as `config.runAs` through setpriv
 * (util-linux: real, effective and saved ids, no supplementary groups, no new privileges); with
 * no run-as account, or one that is root, it is refused.
 */
export function spawnCli(
  config: LocalCliConfig,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string>; uid: UidSource },
): ChildProcess {
  if (config.binaryPath === null)
    throw new LocalCliRefusal(
      "no-binary",
      `the ${config.interface} binary "${config.binary ?? ""}" was not found`,
      "install it on the gateway's PATH, or set its <STEM>_BIN to the absolute path (then acknowledge again)",
    );
  const root = options.uid() === 0;
  if (root && (config.runAs === undefined || config.runAs.uid === 0))
    throw new LocalCliRefusal(
      "as-root",
      `refusing to run ${config.interface} as root: the gateway runs as root and an agent never does`,
      "run the gateway as your own user, or set CLAUDE_CLI_RUN_AS (codex: CODEX_CLI_RUN_AS) to an unprivileged account such as nobody",
    );
  const [cmd, argv] =
    root && config.runAs !== undefined
      ? [
          "setpriv",
          [
            `--reuid=${config.runAs.uid}`,
            `--regid=${config.runAs.gid}`,
            "--clear-groups",
            "--no-new-privs",
            "--",
            config.binaryPath,
            ...args,
          ],
        ]
      : [config.binaryPath, [...args]];
  return spawn(cmd, argv, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Kills the CLI's whole process group (it and whatever it started). Idempotent. */
export function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}
