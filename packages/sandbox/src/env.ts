import { SandboxError } from "./errors.ts";

/** Host variables copied into the sandbox when set: terminal, locale and time zone only. */
export const ENV_ALLOWLIST: readonly string[] = [
  "PATH",
  "TERM",
  "COLORTERM",
  "NO_COLOR",
  "FORCE_COLOR",
  "COLUMNS",
  "LINES",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_CTYPE",
  "LC_MESSAGES",
  "LC_COLLATE",
  "LC_NUMERIC",
  "LC_TIME",
  "TZ",
];

/** Proxy variables, set in both cases (curl ignores upper-case HTTP_PROXY; others read only upper case). */
export const PROXY_ENV_NAMES: readonly string[] = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
];
export const NO_PROXY_ENV_NAMES: readonly string[] = ["NO_PROXY", "no_proxy"];

/** Variables that replace the trust store with the combined bundle (system roots + bottle CA). */
export const CA_BUNDLE_ENV_NAMES: readonly string[] = [
  "SSL_CERT_FILE",
  "CURL_CA_BUNDLE",
  "REQUESTS_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "CODEX_CA_CERTIFICATE",
  "DENO_CERT",
];
/** Variables that add the bottle CA on top of the built-in roots. */
export const CA_EXTRA_ENV_NAMES: readonly string[] = ["NODE_EXTRA_CA_CERTS"];

/** Names the sandbox sets itself; a spec's `env` may not override them. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  "HOME",
  "USER",
  "LOGNAME",
  "TMPDIR",
  "BOTTLE_SANDBOX",
  ...PROXY_ENV_NAMES,
  ...NO_PROXY_ENV_NAMES,
  ...CA_BUNDLE_ENV_NAMES,
  ...CA_EXTRA_ENV_NAMES,
]);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface EnvInput {
  /** Host environment the allowlist is read from. */
  hostEnv: Readonly<Record<string, string | undefined>>;
  /** The caller's variables (manifest env, placeholders); literal values. */
  env?: Readonly<Record<string, string>>;
  home: string;
  user: string;
  /** Loopback port of the proxy bridge inside the sandbox, when there is a proxy. */
  proxyPort?: number;
  /** In-sandbox path of the CA bundle (system roots + bottle CA) and of the bottle CA alone. */
  caBundlePath?: string;
  caCertPath?: string;
}

/**
 * The sandbox's whole environment: the allowlist copied from the host, the caller's variables,
 * HOME/USER/TMPDIR, proxy variables in both cases and the CA variables. Nothing else of the
 * host's environment gets in.
 */
export function buildSandboxEnv(input: EnvInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ENV_ALLOWLIST) {
    const value = input.hostEnv[name];
    if (value !== undefined && value !== "") out[name] = value;
  }
  out["PATH"] ??= "/usr/local/bin:/usr/bin:/bin";
  for (const [name, value] of Object.entries(input.env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw new SandboxError("E_INVALID_SPEC", `env.${name}: not a valid variable name`, {
        hint: "use letters, digits and underscores, not starting with a digit",
      });
    }
    if (RESERVED_ENV_NAMES.has(name)) {
      throw new SandboxError("E_INVALID_SPEC", `env.${name}: set by the sandbox itself`, {
        hint: `remove ${name} from the env; the sandbox sets it`,
      });
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw new SandboxError(
        "E_INVALID_SPEC",
        `env.${name}: the value must be a string without NUL`,
      );
    }
    out[name] = value;
  }
  out["HOME"] = input.home;
  out["USER"] = input.user;
  out["LOGNAME"] = input.user;
  out["TMPDIR"] = "/tmp";
  out["BOTTLE_SANDBOX"] = "1";
  if (input.proxyPort !== undefined) {
    const url = `http://127.0.0.1:${input.proxyPort}`;
    for (const name of PROXY_ENV_NAMES) out[name] = url;
    for (const name of NO_PROXY_ENV_NAMES) out[name] = "localhost,127.0.0.1,::1";
  }
  if (input.caBundlePath !== undefined) {
    for (const name of CA_BUNDLE_ENV_NAMES) out[name] = input.caBundlePath;
  }
  if (input.caCertPath !== undefined) {
    for (const name of CA_EXTRA_ENV_NAMES) out[name] = input.caCertPath;
  }
  return out;
}
