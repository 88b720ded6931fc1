/**
 * The host's side of the launcher protocol (stage 1, scripts.ts): its configuration file, the late
 * setup it is sent, and the probe report it sends back. Both launchers (Perl, else Node) speak it,
 * so what they must parse is as little as possible: lines of hex, no JSON. Everything that
 * interprets the gate's report (uid, capabilities, the AF_UNIX attempt, the environment) is here.
 */
import { GATE_ENV_APPLIED, GATE_UNIX_PROBE } from "./scripts.ts";
import { currentSeccompArch, type SeccompArch } from "./seccomp.ts";

/**
 * The system calls the Perl launcher makes through `syscall` (Perl's own builtins lack them, and
 * POSIX would triple its start), by architecture, from the kernel's syscall tables.
 */
export const LAUNCHER_SYSCALLS: Readonly<
  Record<SeccompArch, { close: number; dup3: number; exit_group: number }>
> = {
  x64: { close: 3, dup3: 292, exit_group: 231 },
  arm64: { close: 57, dup3: 24, exit_group: 94 },
};

/** Which program runs stage 1: Perl when the host has one in its system directories (it starts in a few ms), else Node. */
export type LauncherKind = "perl" | "node";

export interface LauncherConfig {
  bwrap: string;
  /** Stage 2's bwrap arguments. */
  inner: readonly string[];
  /** The seccomp filter's path inside the sandbox. */
  filter: string;
  probe: boolean;
  late: boolean;
  lateTimeoutMs: number;
  /** Stage 2's environment at its start (with a late setup, the gate's script turns it into the final one). */
  env: Readonly<Record<string, string>>;
  /** Without a late setup, with the probe: the gate's script (the final environment is the start one). */
  script?: string;
  bridge?: { port: number; socket: string };
  tcpTargets: readonly { host: string; port: number }[];
  dnsName: string;
  writeProbes: readonly string[];
  proxy?: { port: number; undeclaredHost: string };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");

/** `NAME=value` entries; a name the gate could not set, or a NUL anywhere, throws (the sandbox does not start). */
export function envEntries(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([name, value]) => {
    if (!NAME.test(name)) {
      throw new Error(
        `refused: ${JSON.stringify(name.slice(0, 64))} is not a variable name the gate can set`,
      );
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw new Error(`refused: the value of ${name} is not a string without NUL`);
    }
    return `${name}=${value}`;
  });
}

/** The launcher's configuration file: one `key hex` line per value, in order (keys repeat for lists). */
export function launcherConfig(c: LauncherConfig): string {
  const lines: string[] = [];
  const put = (key: string, value: string) => lines.push(`${key} ${hex(value)}`);
  put("bwrap", c.bwrap);
  for (const a of c.inner) put("inner", a);
  put("filter", c.filter);
  put("probe", c.probe ? "1" : "0");
  put("late", c.late ? "1" : "0");
  put("lateTimeoutMs", String(c.lateTimeoutMs));
  for (const e of envEntries(c.env)) put("env", e);
  if (c.script !== undefined) put("script", c.script);
  if (c.bridge) {
    put("bridgePort", String(c.bridge.port));
    put("bridgeSocket", c.bridge.socket);
  }
  for (const t of c.tcpTargets) put("tcp", `${t.host}:${t.port}`);
  put("dnsName", c.dnsName);
  for (const w of c.writeProbes) put("write", w);
  if (c.proxy) {
    put("proxyPort", String(c.proxy.port));
    put("undeclaredHost", c.proxy.undeclaredHost);
  }
  put("unixProbe", GATE_UNIX_PROBE);
  for (const [name, nr] of Object.entries(LAUNCHER_SYSCALLS[currentSeccompArch()])) {
    put(`sys_${name}`, String(nr));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The POSIX sh script the gate sources to turn the environment stage 2 was started with (`start`)
 * into `final`: `unset NAME` for each variable of `start` that `final` lacks, `export NAME='value'`
 * for each of `final` (every `'` as `'\''`), then the marker line. A name that is not
 * ^[A-Za-z_][A-Za-z0-9_]*$, or a value with a NUL, throws (the agent never starts). PWD is left to
 * the shell, as when the environment came from spawn: it sets PWD itself. (dash refuses a
 * non-numeric OPTIND, and stops: also fail closed.) Linear in the environment's size.
 */
export function envScript(
  start: Readonly<Record<string, string>>,
  final: Readonly<Record<string, string>>,
): string {
  const lines: string[] = [];
  for (const name of Object.keys(start)) {
    if (name === "PWD" || Object.hasOwn(final, name)) continue;
    envEntries({ [name]: "" });
    lines.push(`unset ${name}`);
  }
  for (const [name, value] of Object.entries(final)) {
    if (name === "PWD") continue;
    envEntries({ [name]: value });
    lines.push(`export ${name}='${value.split("'").join("'\\''")}'`);
  }
  lines.push(`set -- ${GATE_ENV_APPLIED} "$@"`);
  return `${lines.join("\n")}\n`;
}

/** The late setup's one line: the final environment (NUL-separated `NAME=value`) and the gate's script, in hex. */
export function setupLine(final: Readonly<Record<string, string>>, script: string): string {
  return `setup ${hex(envEntries(final).join("\0"))} ${hex(script)}\n`;
}

export interface LauncherCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What the launcher reported, checked: its own checks, the gate's, and the environment the agent would get. */
export interface ParsedReport {
  checks: LauncherCheck[];
  env: Record<string, string>;
}

const ORDER = [
  "not root",
  "socket(AF_UNIX)",
  "direct TCP",
  "DNS",
  "writes",
  "proxy answers",
  "proxy refuses",
];

/**
 * Parses the launcher's report line: `{"checks": [...], "gate": "<what the gate wrote on fd 4>",
 * "unixConnections": n}`. Throws on anything that is not that shape (the caller fails the probe).
 * The gate's text gives "not root, no capabilities" (its /proc status: uid ≠ 0, CapEff 0),
 * "socket(AF_UNIX) refused" (its attempt failed with EPERM, nobody connected, seccomp mode 2) and
 * the environment (base64 of its /proc/self/environ after applying the script). A gate that did
 * not report its environment fails "probe answered".
 */
export function parseReport(line: string): ParsedReport {
  const parsed: unknown = JSON.parse(line);
  if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
  const r = parsed as { checks?: unknown; gate?: unknown; unixConnections?: unknown };
  if (!Array.isArray(r.checks) || typeof r.gate !== "string") throw new Error("bad shape");
  const checks: LauncherCheck[] = r.checks.map(
    (c: { name?: unknown; ok?: unknown; detail?: unknown }) => ({
      name: String(c?.name),
      ok: c?.ok === true,
      detail: String(c?.detail),
    }),
  );
  const unixConnections =
    typeof r.unixConnections === "number" && Number.isInteger(r.unixConnections)
      ? r.unixConnections
      : Number.NaN;
  const text = r.gate;
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const unixLine = /^unix (\d+) (.*)$/m.exec(text);
  const refused =
    unixLine !== null &&
    unixLine[1] !== "0" &&
    /Operation not permitted|EPERM/.test(unixLine[2] as string);
  const unixDetail =
    unixConnections !== 0
      ? Number.isNaN(unixConnections)
        ? "the launcher did not count the connections"
        : `connected to ${GATE_UNIX_PROBE}`
      : unixLine === null
        ? "the agent's side did not report"
        : refused
          ? "EPERM"
          : (unixLine[2] as string).trim() || `exit ${unixLine[1]}`;
  const uid = /^Uid:\s+(\d+)/m.exec(text)?.[1];
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(text)?.[1] ?? "?";
  const seccomp = /^Seccomp:\s+(\d+)/m.exec(text)?.[1] ?? "?";
  add(
    "not root, no capabilities",
    uid !== undefined && uid !== "0" && /^0+$/.test(capEff),
    `uid ${uid ?? "?"}, CapEff ${capEff}`,
  );
  add(
    "socket(AF_UNIX) refused",
    refused && unixConnections === 0 && seccomp === "2",
    unixDetail + (seccomp === "2" ? "" : `, seccomp mode ${seccomp}`),
  );
  const env: Record<string, string> = {};
  const b64 = /^environ ([A-Za-z0-9+/=]*)$/m.exec(text)?.[1] ?? "";
  for (const entry of Buffer.from(b64, "base64").toString("utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  // A gate that stopped before its environment was in (or base64 failed) reports none: refuse.
  if (Object.keys(env).length === 0) {
    add("probe answered", false, "the agent's side did not report its environment");
  }
  const rank = (name: string) => {
    const i = ORDER.findIndex((o) => name.startsWith(o));
    return i < 0 ? ORDER.length : i;
  };
  checks.sort((a, b) => rank(a.name) - rank(b.name));
  return { checks, env };
}
