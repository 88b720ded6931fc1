import { createHash } from "node:crypto";
import { isAbsolute, resolve } from "node:path";

/**
 * How a local agent runs beyond its binary and permission mode: the settings an app passes to
 * it (`<STEM>_TOOLS`, `<STEM>_CWD`, `<STEM>_HOME`, `<STEM>_RUN_AS`). `null` means not set, so the
 * app's default applies. Values are normalised so that equivalent spellings compare equal.
 */
export interface LocalAgentSettings {
  /** Built-in tools the agent may use: sorted, de-duplicated, comma-separated; null = not set. */
  tools: string | null;
  /** Working directory (absolute); null = not set. */
  cwd: string | null;
  /** HOME of the agent (absolute); null = not set. */
  home: string | null;
  /** Account the agent runs as (name or uid:gid); null = not set. */
  runAs: string | null;
}

/** The setting names, in the order they are shown and compared. */
export const SETTING_KEYS = ["tools", "cwd", "home", "runAs"] as const;
export type LocalAgentSettingKey = (typeof SETTING_KEYS)[number];

/** Settings with nothing set: what an acknowledgement from before settings were recorded covers. */
export const UNSET_SETTINGS: Readonly<LocalAgentSettings> = Object.freeze({
  tools: null,
  cwd: null,
  home: null,
  runAs: null,
});

function trimmed(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  const t = value.trim();
  return t === "" ? null : t;
}

/**
 * A tools list as the agent would get it: split on commas and whitespace, empties dropped, then
 * sorted and de-duplicated (the same set of tools is the same capability). Empty -> null.
 */
export function normalizeTools(value: string | undefined | null): string | null {
  const list = [...new Set((value ?? "").split(/[\s,]+/).filter((t) => t !== ""))].sort();
  return list.length === 0 ? null : list.join(",");
}

/** A directory setting made absolute against `base`, so a moved start directory is a change. */
export function normalizeDir(value: string | undefined | null, base: string): string | null {
  const t = trimmed(value);
  if (t === null) return null;
  return isAbsolute(t) ? resolve(t) : resolve(base, t);
}

/** Raw settings (from env or an app's override) normalised. */
export function normalizeSettings(
  raw: {
    tools?: string | null | undefined;
    cwd?: string | null | undefined;
    home?: string | null | undefined;
    runAs?: string | null | undefined;
  },
  base: string,
): LocalAgentSettings {
  return {
    tools: normalizeTools(raw.tools),
    cwd: normalizeDir(raw.cwd, base),
    home: normalizeDir(raw.home, base),
    runAs: trimmed(raw.runAs),
  };
}

/** What identifies the binary: its resolved path, else the configured name. */
export function comparableBinary(binary: string | null, binaryPath: string | null): string {
  if (binaryPath !== null) return `path:${binaryPath}`;
  return `unresolved:${binary ?? ""}`;
}

// Bumped whenever the fingerprinted fields change: a record made under another version then
// fails verification and is dropped (fail closed), so it covers nothing.
const FINGERPRINT_VERSION = "bk-local-agent-v2";

/** The whole configuration of one local agent, as acknowledged. */
export interface FingerprintInput {
  interface: string;
  binary: string | null;
  binaryPath: string | null;
  permissionMode: string;
  settings: LocalAgentSettings;
}

/**
 * `sha256:<hex>` over everything that decides what runs: interface, binary, permission mode,
 * tools, working directory, HOME and run-as account. Equal configurations give equal
 * fingerprints; any difference in any field gives a different one.
 */
export function configFingerprint(input: FingerprintInput): string {
  const fields = [
    FINGERPRINT_VERSION,
    input.interface,
    comparableBinary(input.binary, input.binaryPath),
    input.permissionMode,
    input.settings.tools,
    input.settings.cwd,
    input.settings.home,
    input.settings.runAs,
  ];
  return `sha256:${createHash("sha256").update(JSON.stringify(fields)).digest("hex")}`;
}
