import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { SandboxError } from "./errors.ts";
import type { HostFacts, SandboxSpec } from "./plan.ts";
import { currentSeccompArch } from "./seccomp.ts";

export const DEFAULT_AGENT_ACCOUNT = "bottlekit-agent";
const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export interface HostOptions {
  platform?: NodeJS.Platform;
  uid?: number;
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * The Perl that runs the sandbox's stage 1: default the system's (/usr/bin/perl, /bin/perl) when
   * there is one; null runs it under Node instead.
   */
  perl?: string | null;
}

/** Finds an executable on PATH (no shell). */
export function which(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  for (const dir of (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function parsePasswdLine(line: string, name: string): PasswdEntry | undefined {
  const [n, , uid, gid] = line.trim().split(":");
  if (n !== name || uid === undefined || gid === undefined) return undefined;
  if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return undefined;
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * `/etc/passwd` first (as NSS's usual `files` source, without starting a process on every run),
 * then `getent passwd` for accounts from other NSS sources.
 */
function lookupAccount(name: string): PasswdEntry | undefined {
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      if (!line.startsWith(`${name}:`)) continue;
      const entry = parsePasswdLine(line, name);
      if (entry) return entry;
    }
  } catch {
    // no readable /etc/passwd: ask NSS
  }
  let text = "";
  try {
    text = execFileSync("getent", ["passwd", name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return undefined;
  }
  return parsePasswdLine(text, name);
}

/**
 * The unprivileged account a root caller runs the agent as: looked up, created with
 * `useradd --system` when missing (and allowed), and refused when it maps to uid or gid 0.
 */
export function resolveAgentAccount(name: string, create: boolean): PasswdEntry {
  if (!ACCOUNT_NAME.test(name)) {
    throw new SandboxError(
      "E_INVALID_SPEC",
      `runAs: ${JSON.stringify(name)} is not an account name`,
      {
        hint: `use a name like ${DEFAULT_AGENT_ACCOUNT}`,
      },
    );
  }
  let entry = lookupAccount(name);
  if (!entry && create) {
    try {
      execFileSync(
        "useradd",
        [
          "--system",
          "--user-group",
          "--no-create-home",
          "--home-dir",
          "/nonexistent",
          "--shell",
          "/usr/sbin/nologin",
          name,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
    } catch (cause) {
      // Another process may have created it at the same moment.
      entry = lookupAccount(name);
      if (!entry) {
        throw new SandboxError(
          "E_ROOT_REFUSED",
          `running as root and the account ${name} cannot be created`,
          {
            cause,
            hint: `create it (useradd --system --user-group ${name}) or run bottle as a regular user`,
          },
        );
      }
    }
    entry = lookupAccount(name);
  }
  if (!entry) {
    throw new SandboxError(
      "E_ROOT_REFUSED",
      `running as root and the account ${name} does not exist; an agent never runs as root`,
      {
        hint: `create it (useradd --system --user-group ${name}) or run bottle as a regular user`,
      },
    );
  }
  if (entry.uid === 0 || entry.gid === 0) {
    throw new SandboxError(
      "E_ROOT_REFUSED",
      `the account ${name} is root (uid ${entry.uid}, gid ${entry.gid}); an agent never runs as root`,
      {
        hint: "choose an unprivileged account",
      },
    );
  }
  return entry;
}

function existsKind(p: string): "dir" | "file" | "none" {
  try {
    return fs.statSync(p).isDirectory() ? "dir" : "file";
  } catch {
    return "none";
  }
}

/** Where a system Perl lives; one elsewhere (perlbrew, /usr/local) may miss its modules in the sandbox. */
const SYSTEM_PERLS = ["/usr/bin/perl", "/bin/perl"];

function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
];

/**
 * Checks that this host can run a sandbox and resolves the facts a plan needs: Linux on x64 or
 * arm64, bwrap on PATH, and the agent's account (never root).
 */
export function inspectHost(
  spec: Pick<SandboxSpec, "runAs" | "createAccount">,
  options: HostOptions = {},
): HostFacts {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  if (platform !== "linux") {
    throw new SandboxError(
      "E_UNSUPPORTED_PLATFORM",
      `bottle's sandbox is not supported on ${platform}: it needs Linux namespaces (bubblewrap)`,
      {
        hint: "run agents bottled on Linux (a VM or container with user namespaces works)",
      },
    );
  }
  currentSeccompArch();
  const bwrap = which("bwrap", env);
  if (!bwrap) {
    throw new SandboxError("E_BWRAP_MISSING", "bubblewrap (bwrap) is not installed", {
      hint: "apt-get install bubblewrap",
    });
  }
  const uid = options.uid ?? process.getuid?.() ?? -1;
  let account: HostFacts["account"];
  if (uid === 0) {
    const entry = resolveAgentAccount(
      spec.runAs ?? DEFAULT_AGENT_ACCOUNT,
      spec.createAccount ?? true,
    );
    if (!which("setpriv", env)) {
      throw new SandboxError(
        "E_ROOT_REFUSED",
        "running as root and setpriv is missing, so the agent cannot drop to an unprivileged account",
        {
          hint: "apt-get install util-linux (setpriv), or run bottle as a regular user",
        },
      );
    }
    account = { ...entry, drop: true };
  } else {
    const name = env["USER"] ?? env["LOGNAME"] ?? `uid${uid}`;
    account = { name, uid, gid: process.getgid?.() ?? uid, drop: false };
  }
  const systemCaBundle = CA_BUNDLES.find((p) => existsKind(p) === "file");
  // Only the system's Perl (its modules are under /usr, visible in the sandbox): not one on PATH.
  const perl =
    options.perl === null ? undefined : (options.perl ?? SYSTEM_PERLS.find(isExecutableFile));
  return {
    bwrap,
    node: process.execPath,
    ...(perl === undefined ? {} : { perl }),
    account,
    systemCaBundle,
    hostHome: env["HOME"],
    exists: existsKind,
  };
}
