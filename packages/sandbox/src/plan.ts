import path from "node:path";
import { buildSandboxEnv } from "./env.ts";
import { SandboxError } from "./errors.ts";
import { GATE_SCRIPT, PROXY_SOCKET_IN_SANDBOX, RUN_DIR } from "./scripts.ts";

/** What to run and what it may touch. Every path is absolute. */
export interface SandboxSpec {
  /** The agent's argv (argv[0] resolved on the sandbox's PATH). */
  command: readonly string[];
  /** The project directory: writable, and the default working directory. */
  projectDir: string;
  /** Working directory inside the sandbox (default: projectDir). */
  cwd?: string;
  /** Extra paths visible read-only (e.g. tools installed under /tmp or /home, hidden otherwise). */
  readOnly?: readonly string[];
  /** Extra writable paths. */
  readWrite?: readonly string[];
  /** Paths replaced by an empty directory (or /dev/null for a file). */
  hidden?: readonly string[];
  /**
   * Paths inside writable paths kept read-only (those that exist): e.g. a project's `.git/hooks`
   * and `.git/config`, which the host would otherwise run or obey after the agent is gone.
   */
  protect?: readonly string[];
  /**
   * Host files shown read-only at another path, after the home is created (e.g. an agent's
   * settings file at `/home/bottle/.claude/settings.json`, which the agent cannot replace).
   */
  mounts?: readonly { source: string; target: string }[];
  /** The caller's variables (manifest env, credential placeholders), literal values. */
  env?: Readonly<Record<string, string>>;
  /** Where the allowlisted variables (PATH, TERM, LANG, …) come from. Default: process.env. */
  hostEnv?: Readonly<Record<string, string | undefined>>;
  /** The egress proxy's unix socket; the agent reaches it as http://127.0.0.1:port. */
  proxy?: { socketPath: string; port?: number };
  /** PEM file of the bottle CA; the sandbox trusts it besides the system roots. */
  caCertPath?: string;
  /**
   * When the host process is root, the agent runs as this unprivileged account
   * (default "bottlekit-agent"). Ignored for a non-root caller, who is already unprivileged.
   */
  runAs?: string;
  /** Create `runAs` (useradd --system) when it does not exist and the caller is root. Default true. */
  createAccount?: boolean;
  /** Run the startup probe before the agent. Default true. */
  probe?: boolean;
}

/** The host facts a plan depends on (resolved by `inspectHost`). */
export interface HostFacts {
  bwrap: string;
  node: string;
  /**
   * The system Perl (/usr/bin/perl or /bin/perl) that runs stage 1 when there is one; without it,
   * `node` does (the same protocol, ~50-100 ms more to start on every run).
   */
  perl?: string;
  /** The account the agent runs as; `drop` when the host process is root and must switch to it. */
  account: { name: string; uid: number; gid: number; drop: boolean };
  /** The host's CA bundle, when found (concatenated with the bottle CA). */
  systemCaBundle?: string;
  /** The host's HOME (hidden), when set. */
  hostHome?: string;
  /** Paths that exist on the host, for hiding decisions. */
  exists: (p: string) => "dir" | "file" | "none";
}

export interface Bind {
  kind: "ro" | "rw" | "tmpfs" | "hide-file" | "dir";
  path: string;
  source?: string;
}

export interface SandboxPlan {
  /** argv of the host process (setpriv when dropping root, else bwrap directly). */
  argv: string[];
  /** Stage-2 bwrap arguments (run by the launcher, inside stage 1). */
  inner: string[];
  env: Record<string, string>;
  binds: Bind[];
  home: string;
  cwd: string;
  account: HostFacts["account"];
  proxyPort: number | undefined;
  /** Directories the probe tries to write in (each must fail). */
  writeProbes: string[];
  /** Host directory bound read-only at RUN_DIR (launcher, probe, filter, config, CA). */
  runDir: string;
  probe: boolean;
  /** The program that runs stage 1. */
  launcher: "perl" | "node";
}

export const DEFAULT_PROXY_PORT = 3128;
export const SANDBOX_HOME = "/home/bottle";

function absolute(key: string, p: string): string {
  if (typeof p !== "string" || !path.isAbsolute(p)) {
    throw new SandboxError(
      "E_INVALID_SPEC",
      `${key}: ${JSON.stringify(p)} is not an absolute path`,
      {
        hint: "give absolute paths (path.resolve them first)",
      },
    );
  }
  const n = path.resolve(p);
  if (n === "/") {
    throw new SandboxError("E_INVALID_SPEC", `${key}: "/" cannot be bound`, {
      hint: "name the project directory itself",
    });
  }
  return n;
}

const inside = (child: string, parent: string): boolean =>
  child === parent || child.startsWith(parent.endsWith("/") ? parent : `${parent}/`);

/** Builds the bwrap invocation for `spec` on a host described by `host`. Pure: starts nothing. */
export function planSandbox(spec: SandboxSpec, host: HostFacts, runDir: string): SandboxPlan {
  if (!Array.isArray(spec.command) || spec.command.length === 0) {
    throw new SandboxError("E_INVALID_SPEC", "command: give the program to run", {
      hint: "e.g. command: ['claude'] or ['/bin/true']",
    });
  }
  const project = absolute("projectDir", spec.projectDir);
  const cwd = spec.cwd === undefined ? project : absolute("cwd", spec.cwd);
  const readOnly = (spec.readOnly ?? []).map((p, i) => absolute(`readOnly[${i}]`, p));
  const readWrite = (spec.readWrite ?? []).map((p, i) => absolute(`readWrite[${i}]`, p));
  const hidden = (spec.hidden ?? []).map((p, i) => absolute(`hidden[${i}]`, p));
  for (const p of [project, ...readWrite]) {
    if (inside(p, RUN_DIR) || inside(p, "/proc") || inside(p, "/dev")) {
      throw new SandboxError("E_INVALID_SPEC", `${p}: cannot be made writable`, {
        hint: "choose a project directory outside /proc, /dev and /run/bottle",
      });
    }
  }
  const proxyPort = spec.proxy ? (spec.proxy.port ?? DEFAULT_PROXY_PORT) : undefined;
  if (
    proxyPort !== undefined &&
    (!Number.isInteger(proxyPort) || proxyPort < 1 || proxyPort > 65535)
  ) {
    throw new SandboxError("E_INVALID_SPEC", `proxy.port: ${proxyPort} is not a TCP port`);
  }
  if (spec.proxy) absolute("proxy.socketPath", spec.proxy.socketPath);

  const binds: Bind[] = [];
  // Read-only system; fresh /dev and /proc; writable scratch that vanishes with the sandbox.
  binds.push({ kind: "ro", source: "/", path: "/" });
  binds.push({ kind: "tmpfs", path: "/tmp" });
  binds.push({ kind: "tmpfs", path: "/run" });
  // Every home on the host is hidden; the agent gets an empty one.
  for (const h of ["/home", "/root"])
    if (host.exists(h) === "dir") binds.push({ kind: "tmpfs", path: h });
  if (
    host.hostHome &&
    host.exists(host.hostHome) === "dir" &&
    !["/home", "/root"].some((h) => inside(host.hostHome ?? "", h))
  ) {
    binds.push({ kind: "tmpfs", path: host.hostHome });
  }
  binds.push({ kind: "dir", path: SANDBOX_HOME });
  for (const p of hidden) {
    const kind = host.exists(p);
    if (kind === "dir") binds.push({ kind: "tmpfs", path: p });
    else if (kind === "file") binds.push({ kind: "hide-file", path: p });
  }
  binds.push({ kind: "ro", source: runDir, path: RUN_DIR });
  if (spec.proxy)
    binds.push({ kind: "ro", source: spec.proxy.socketPath, path: PROXY_SOCKET_IN_SANDBOX });
  // The host's Node runs the launcher and the probe: keep it visible when a tmpfs hides it.
  const hiddenRoots = binds.filter((b) => b.kind === "tmpfs").map((b) => b.path);
  if (hiddenRoots.some((h) => inside(host.node, h))) readOnly.push(host.node);
  for (const p of readOnly) binds.push({ kind: "ro", source: p, path: p });
  binds.push({ kind: "rw", source: project, path: project });
  for (const p of readWrite) binds.push({ kind: "rw", source: p, path: p });
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    const source = absolute(`mounts[${i}].source`, m.source);
    const target = absolute(`mounts[${i}].target`, m.target);
    if (inside(target, RUN_DIR) || inside(target, "/proc") || inside(target, "/dev")) {
      throw new SandboxError("E_INVALID_SPEC", `mounts[${i}].target: ${target} is reserved`, {
        hint: "mount under the home, the project or another path",
      });
    }
    binds.push({ kind: "ro", source, path: target });
  }
  for (const [i, p] of (spec.protect ?? []).entries()) {
    const abs = absolute(`protect[${i}]`, p);
    if (host.exists(abs) !== "none") binds.push({ kind: "ro", source: abs, path: abs });
  }

  const bindArgs: string[] = [];
  for (const b of binds) {
    if (b.kind === "ro") bindArgs.push("--ro-bind", b.source ?? b.path, b.path);
    else if (b.kind === "rw") bindArgs.push("--bind", b.source ?? b.path, b.path);
    else if (b.kind === "tmpfs") bindArgs.push("--tmpfs", b.path);
    else if (b.kind === "dir") bindArgs.push("--dir", b.path);
    else bindArgs.push("--ro-bind", "/dev/null", b.path);
  }

  const caBundle = spec.caCertPath ? `${RUN_DIR}/ca-bundle.pem` : undefined;
  const env = buildSandboxEnv({
    hostEnv: spec.hostEnv ?? process.env,
    env: spec.env,
    home: SANDBOX_HOME,
    user: host.account.name,
    proxyPort,
    caBundlePath: caBundle,
    caCertPath: spec.caCertPath ? `${RUN_DIR}/ca.pem` : undefined,
  });

  const launcher = host.perl ? "perl" : "node";
  const outer = [
    host.bwrap,
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-net",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--hostname",
    "bottle",
    ...bindArgs.slice(0, 3),
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    ...bindArgs.slice(3),
    "--chdir",
    cwd,
    "--",
    ...(launcher === "perl"
      ? [host.perl as string, `${RUN_DIR}/launcher.pl`]
      : [host.node, `${RUN_DIR}/launcher.cjs`]),
    `${RUN_DIR}/launcher.conf`,
  ];
  const argv = host.account.drop
    ? [
        "setpriv",
        `--reuid=${host.account.uid}`,
        `--regid=${host.account.gid}`,
        "--init-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        ...outer,
      ]
    : outer;

  const probe = spec.probe ?? true;
  // Stage 2: the agent's own user and pid namespaces (it cannot see or trace the bridge) and the filter.
  const agentArgv = probe
    ? ["/bin/sh", "-c", GATE_SCRIPT, "bottle-gate", host.node, ...spec.command]
    : [...spec.command];
  const inner = [
    "--unshare-user",
    "--unshare-pid",
    "--die-with-parent",
    // --dev-bind: a plain --bind is nodev, and /dev/null would refuse every write.
    "--dev-bind",
    "/",
    "/",
    "--proc",
    "/proc",
    "--seccomp",
    "9",
    "--chdir",
    cwd,
    "--",
    ...agentArgv,
  ];

  const writable = [project, ...readWrite];
  // Scratch mounts (tmpfs) are writable and vanish with the sandbox: not probed.
  const scratch = ["/tmp", "/run", "/home", "/root", "/dev", "/proc"];
  const candidates = ["/", "/etc", "/usr", "/var", "/opt", path.dirname(project)];
  const writeProbes = [...new Set(candidates)].filter(
    (d) => !writable.some((w) => inside(d, w)) && !scratch.some((s) => inside(d, s)),
  );

  return {
    argv,
    inner,
    env,
    binds,
    home: SANDBOX_HOME,
    cwd,
    account: host.account,
    proxyPort,
    writeProbes,
    runDir,
    probe,
    launcher,
  };
}
