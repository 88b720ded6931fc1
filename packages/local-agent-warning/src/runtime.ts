import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { Env } from "./env.ts";
import { configFingerprint, type LocalAgentSettings, normalizeSettings } from "./fingerprint.ts";
import { canonicalInterface, lookupLocalAgent } from "./registry.ts";

/** What an acknowledgement covers for one interface: the binary that runs and how it runs. */
export interface LocalAgentRuntime {
  /** Canonical interface id, e.g. `claude-cli`. */
  interface: string;
  /** The binary as configured (override, env var, or registry default); null when unknown. */
  binary: string | null;
  /** Absolute path the binary resolves to on this host, or null when it cannot be found. */
  binaryPath: string | null;
  /** The permission mode the agent will run with. */
  permissionMode: string;
  /** Which credentials the agent can use (from the registry; names and locations only). */
  credentials: string | undefined;
  /** Tools, working directory, HOME and run-as account (null = not set, the app's default). */
  settings: LocalAgentSettings;
  /** Fingerprint of the whole configuration (see `configFingerprint`). */
  fingerprint: string;
}

/** Per-interface overrides an app may pass when it spawns agents with non-default settings. */
export interface RuntimeOverride {
  binary?: string;
  permissionMode?: string;
  tools?: string;
  cwd?: string;
  home?: string;
  runAs?: string;
}

/**
 * The env-var stem for an interface: `claude-cli` -> `CLAUDE_CLI`, so `CLAUDE_CLI_BIN` and
 * `CLAUDE_CLI_PERMISSION_MODE` override the binary and permission mode. When the registry names
 * the binary variable (`OPENCODE_CLI_BIN`), the stem is taken from it (`OPENCODE_CLI`).
 */
export function envStem(iface: string): string {
  const binaryEnv = lookupLocalAgent(iface)?.binaryEnv;
  if (binaryEnv?.endsWith("_BIN")) return binaryEnv.slice(0, -"_BIN".length);
  return iface
    .trim()
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, "_");
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (process.platform !== "win32") accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves a binary the way a shell would: a name containing a path separator is taken relative
 * to `cwd`; a bare name is looked up on `PATH` (first executable match wins). Symlinks are not
 * followed, so upgrading an agent that keeps its PATH entry does not re-warn. Returns null when
 * nothing executable is found. O(entries on PATH).
 */
export function resolveBinaryPath(
  binary: string,
  env: Env,
  cwd: string = process.cwd(),
): string | null {
  const trimmed = binary.trim();
  if (trimmed === "") return null;
  if (trimmed.includes("/") || (process.platform === "win32" && trimmed.includes("\\"))) {
    const candidate = isAbsolute(trimmed) ? trimmed : resolve(cwd, trimmed);
    return isExecutableFile(candidate) ? candidate : null;
  }
  const pathVar = env["PATH"] ?? env["Path"] ?? "";
  const exts =
    process.platform === "win32"
      ? ["", ...(env["PATHEXT"] ?? ".EXE;.CMD;.BAT").split(";").filter(Boolean)]
      : [""];
  for (const dir of pathVar.split(delimiter)) {
    if (dir === "") continue;
    for (const ext of exts) {
      const candidate = resolve(cwd, join(dir, trimmed + ext));
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return null;
}

export interface ResolveRuntimeOptions {
  env: Env;
  overrides?: Readonly<Record<string, RuntimeOverride>>;
  cwd?: string;
}

/**
 * What would run for `iface` on this host: binary and permission mode from the app's override,
 * else `<STEM>_BIN` / `<STEM>_PERMISSION_MODE` in `env`, else the registry's defaults; the binary
 * resolved to an absolute path. Tools, working directory, HOME and run-as account likewise from
 * the override, else `<STEM>_TOOLS`, `<STEM>_CWD`, `<STEM>_HOME`, `<STEM>_RUN_AS` (directories
 * made absolute against `cwd`), else not set. Apps that spawn local agents should use the same function so
 * the acknowledgement matches what actually runs.
 */
export function resolveLocalAgentRuntime(
  iface: string,
  options: ResolveRuntimeOptions,
): LocalAgentRuntime {
  const spec = lookupLocalAgent(iface);
  const id = spec?.id ?? iface.trim().toLowerCase();
  const override = findOverride(options.overrides, id);
  const stem = envStem(id);
  const envBinary = nonEmpty(options.env[spec?.binaryEnv ?? `${stem}_BIN`]);
  const envMode = nonEmpty(options.env[`${stem}_PERMISSION_MODE`]);
  const binary = nonEmpty(override?.binary) ?? envBinary ?? spec?.binary ?? null;
  const permissionMode =
    nonEmpty(override?.permissionMode) ?? envMode ?? spec?.defaultPermissionMode ?? "unknown";
  const pick = (key: "tools" | "cwd" | "home" | "runAs", suffix: string): string | undefined =>
    override !== undefined && override[key] !== undefined
      ? override[key]
      : options.env[`${stem}_${suffix}`];
  const settings = normalizeSettings(
    {
      tools: pick("tools", "TOOLS"),
      cwd: pick("cwd", "CWD"),
      home: pick("home", "HOME"),
      runAs: pick("runAs", "RUN_AS"),
    },
    options.cwd ?? process.cwd(),
  );
  const binaryPath = binary === null ? null : resolveBinaryPath(binary, options.env, options.cwd);
  return {
    interface: id,
    binary,
    binaryPath,
    permissionMode,
    credentials: spec?.credentials,
    settings,
    fingerprint: configFingerprint({ interface: id, binary, binaryPath, permissionMode, settings }),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** The override for `id`, whether the app keyed it by id or by an alias (any case). */
function findOverride(
  overrides: Readonly<Record<string, RuntimeOverride>> | undefined,
  id: string,
): RuntimeOverride | undefined {
  if (overrides === undefined) return undefined;
  if (Object.hasOwn(overrides, id)) return overrides[id];
  for (const [key, value] of Object.entries(overrides)) {
    if (canonicalInterface(key) === id) return value;
  }
  return undefined;
}
