import { styleText } from "node:util";
import { ACK_ENV_VAR } from "./env.ts";
import { type LocalAgentSettingKey, type LocalAgentSettings, SETTING_KEYS } from "./fingerprint.ts";
import type { GateResult, PendingInterface, PendingReason } from "./gate.ts";
import { envStem } from "./runtime.ts";

/** Where the long-form explanation lives. */
export const DOCS_URL =
  "https://github.com/bottlekit/bottlekit/blob/main/docs/packages/local-agent-warning.md";

export interface RenderOptions {
  /** Use ANSI colour. Decide with `shouldUseColor(stream, env)`; default false (plain text). */
  color?: boolean;
  /** How the operator acknowledges, e.g. `bottle-gateway up --ack-local-agents`. */
  ackCommand?: string;
  /** How the operator revokes, e.g. `bottle-gateway local-agents revoke`. */
  revokeCommand?: string;
  /** Link shown after "Learn more". */
  docsUrl?: string;
}

type Style = "yellow" | "bold" | "dim" | "green" | "red";

function painter(color: boolean): (style: Style | Style[], text: string) => string {
  // We decide about colour ourselves (shouldUseColor); styleText must not second-guess it.
  return (style, text) => (color ? styleText(style, text, { validateStream: false }) : text);
}

// C0/C1 controls, DEL and bidi overrides: config strings must not drive the terminal.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Makes a config-derived string safe to print: control and bidi characters are escaped. */
export function sanitizeForTerminal(text: string): string {
  return text.replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const REASON_TEXT: Record<PendingReason, string> = {
  new: "not acknowledged on this host yet",
  "binary-changed": "the agent binary changed since it was acknowledged",
  "permission-mode-changed": "the permission mode changed since it was acknowledged",
  "tools-changed": "the tools changed since they were acknowledged",
  "cwd-changed": "the working directory changed since it was acknowledged",
  "home-changed": "HOME changed since it was acknowledged",
  "run-as-changed": "the run-as account changed since it was acknowledged",
  "configuration-changed": "the configuration changed since it was acknowledged",
};

/** How each setting is labelled in the panel, and the env-var suffix that sets it. */
const SETTING_LABEL: Readonly<Record<LocalAgentSettingKey, { label: string; suffix: string }>> = {
  tools: { label: "tools", suffix: "TOOLS" },
  cwd: { label: "working directory", suffix: "CWD" },
  home: { label: "HOME", suffix: "HOME" },
  runAs: { label: "runs as", suffix: "RUN_AS" },
};

const REASON_SETTING: Partial<Record<PendingReason, LocalAgentSettingKey>> = {
  "tools-changed": "tools",
  "cwd-changed": "cwd",
  "home-changed": "home",
  "run-as-changed": "runAs",
};

function settingText(value: string | null): string {
  return value === null ? "not set" : sanitizeForTerminal(value);
}

/** One line per setting: label, value (or "not set") and the variable that sets it. */
export function describeSettings(iface: string, settings: LocalAgentSettings): string[] {
  const stem = envStem(iface);
  const width = Math.max(...SETTING_KEYS.map((k) => SETTING_LABEL[k].label.length));
  return SETTING_KEYS.map((key) => {
    const { label, suffix } = SETTING_LABEL[key];
    return `${label.padEnd(width)}  ${settingText(settings[key])} (${stem}_${suffix})`;
  });
}

function describeChange(p: PendingInterface): string[] {
  const lines: string[] = [];
  for (const reason of p.reasons) {
    let line = REASON_TEXT[reason];
    const setting = REASON_SETTING[reason];
    if (reason === "binary-changed" && p.previous) {
      line += ` (was ${sanitizeForTerminal(p.previous.binaryPath ?? p.previous.binary ?? "unknown")})`;
    }
    if (reason === "permission-mode-changed" && p.previous) {
      line += ` (was ${sanitizeForTerminal(p.previous.permissionMode)})`;
    }
    if (setting !== undefined && p.previous) {
      line += ` (was ${settingText(p.previous.settings[setting])})`;
    }
    lines.push(line);
  }
  return lines;
}

/** The capabilities a local-agent provider has, compared with a network provider. */
export const TRUST_TABLE: ReadonlyArray<{
  capability: string;
  network: string;
  localAgent: string;
}> = [
  {
    capability: "filesystem",
    network: "none",
    localAgent: "reads and writes anything your user can",
  },
  { capability: "shell", network: "none", localAgent: "runs any command as your user" },
  {
    capability: "credentials",
    network: "one API key",
    localAgent: "your logins, keychain and credential files; no per-agent isolation",
  },
  {
    capability: "network",
    network: "the provider only",
    localAgent: "anywhere this host can reach",
  },
  { capability: "use for", network: "any deployment", localAgent: "local development only" },
];

/**
 * The warning panel for the un-acknowledged interfaces of `pending`: which entries use them,
 * what will run, what such a provider can do, and how to acknowledge and revoke. Never shows
 * the ack file's location or any credential. Plain text unless `color` is true.
 */
export function renderLocalAgentWarning(
  pending: readonly PendingInterface[],
  options: RenderOptions = {},
): string {
  if (pending.length === 0) return "";
  const paint = painter(options.color === true);
  const bar = paint("yellow", "│");
  const names = pending.map((p) => p.interface).sort();
  const out: string[] = [];
  const line = (text = ""): void => {
    out.push(text === "" ? bar : `${bar} ${text}`);
  };
  out.push(paint(["yellow", "bold"], `⚠  Local-agent provider detected (${names.join(", ")})`));
  for (const p of pending) {
    line();
    line(paint("bold", sanitizeForTerminal(p.interface)));
    for (const entry of p.entries) {
      const model =
        entry.model !== undefined && entry.model !== entry.name
          ? paint("dim", ` (model ${sanitizeForTerminal(entry.model)})`)
          : "";
      line(`  entry ${sanitizeForTerminal(entry.name)}${model}`);
    }
    const binary =
      p.binaryPath ?? (p.binary === null ? "an unknown binary" : `${p.binary} (not found on PATH)`);
    line(
      `  spawns ${sanitizeForTerminal(binary)} with permission mode ${sanitizeForTerminal(p.permissionMode)}`,
    );
    for (const setting of describeSettings(p.interface, p.settings)) line(`    ${setting}`);
    if (p.credentials !== undefined) {
      line(`  can use ${sanitizeForTerminal(p.credentials)}`);
    }
    for (const change of describeChange(p)) line(paint("dim", `  ${change}`));
  }
  line();
  line(
    `${pending.length === 1 ? "This provider is" : "These providers are"} not an API: each request spawns the agent CLI`,
  );
  line("as a subprocess that runs as you. Compared with a network LLM provider:");
  line();
  const width = Math.max(...TRUST_TABLE.map((r) => r.capability.length));
  const netWidth = Math.max("network LLM".length, ...TRUST_TABLE.map((r) => r.network.length));
  line(paint("dim", `  ${"".padEnd(width)}  ${"network LLM".padEnd(netWidth)}  local agent`));
  for (const row of TRUST_TABLE) {
    line(
      `  ${row.capability.padEnd(width)}  ${row.network.padEnd(netWidth)}  ${paint("bold", row.localAgent)}`,
    );
  }
  line();
  line("Keep it to one developer on one workstation, bound to loopback, never as root.");
  line(`Learn more:  ${options.docsUrl ?? DOCS_URL}`);
  line(
    `Acknowledge: ${options.ackCommand ?? "re-run with --ack-local-agents"} (or ${ACK_ENV_VAR}=1)`,
  );
  line(
    `Revoke:      ${options.revokeCommand ?? "re-run with --revoke-local-agents"} (warns again)`,
  );
  return `${out.join("\n")}\n`;
}

/**
 * Human-readable text for a gate decision: nothing for `none`, one line for `acknowledged` and
 * `already-acknowledged`, the panel for `warn`, the panel and the refusal for `refuse`.
 */
export function renderLocalAgentGate(result: GateResult, options: RenderOptions = {}): string {
  const paint = painter(options.color === true);
  const ifaces = (list: readonly string[]): string => list.map(sanitizeForTerminal).join(", ");
  switch (result.action) {
    case "none":
      return "";
    case "acknowledged":
      return `${paint("green", "✓")} Acknowledged local-agent provider: ${ifaces(result.acknowledged)} (won't warn again unless the binary, permission mode, tools, working directory, HOME or run-as account changes)\n`;
    case "already-acknowledged":
      return `${paint("dim", `local-agent provider: ${ifaces(result.runtimes.map((r) => r.interface))} (acknowledged)`)}\n`;
    case "warn":
      return renderLocalAgentWarning(result.pending, options);
    case "refuse": {
      const panel = renderLocalAgentWarning(result.pending, options);
      const refusal = result.refusal;
      const message = refusal?.message ?? "local-agent provider not acknowledged";
      const hint = refusal?.hint ?? `pass --ack-local-agents or set ${ACK_ENV_VAR}=1`;
      return `${panel}${paint("red", "✗")} refused: ${message}\n  ${hint}\n`;
    }
  }
}

/** A JSON-safe summary of a gate decision (no ack-file path, no credentials). */
export interface GateResultJson {
  action: GateResult["action"];
  detected: { interface: string; name: string; model: string | null; index: number }[];
  pending: {
    interface: string;
    binaryPath: string | null;
    permissionMode: string;
    settings: LocalAgentSettings;
    fingerprint: string;
    reasons: PendingReason[];
    entries: string[];
  }[];
  acknowledged: string[];
  error?: {
    code: "E_LOCAL_AGENT_UNACKNOWLEDGED";
    message: string;
    interfaces: string[];
    unattendedBecause: string;
    hint: string;
  };
}

/** The JSON document an app prints under `--json` (for `refuse`, with `error` set). */
export function gateResultJson(result: GateResult): GateResultJson {
  const json: GateResultJson = {
    action: result.action,
    detected: result.detected.map((d) => ({
      interface: d.interface,
      name: d.name,
      model: d.model ?? null,
      index: d.index,
    })),
    pending: result.pending.map((p) => ({
      interface: p.interface,
      binaryPath: p.binaryPath,
      permissionMode: p.permissionMode,
      settings: { ...p.settings },
      fingerprint: p.fingerprint,
      reasons: p.reasons,
      entries: p.entries.map((e) => e.name),
    })),
    acknowledged: result.acknowledged,
  };
  if (result.refusal) {
    json.error = {
      code: result.refusal.code,
      message: result.refusal.message,
      interfaces: result.refusal.interfaces,
      unattendedBecause: result.refusal.unattendedBecause,
      hint: result.refusal.hint,
    };
  }
  return json;
}
