/**
 * Settings: each one resolved flag > env > default, with the source kept so `--print-config`
 * can say where every value came from. Secrets are never values here: the key is read from the
 * environment variable the settings name, and printed only as "set" or "unset".
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { didYouMean, suggest } from "@bottlekit/diagnostics";
import { AgentCliError } from "./errors.ts";

export interface Sourced<T> {
  value: T;
  /** `flag --x`, `env NAME`, `default`. */
  source: string;
}

export interface FlagValues {
  model?: string;
  baseUrl?: string;
  apiKeyEnv?: string;
  maxSteps?: string;
  maxTokens?: string;
  httpTimeout?: string;
  httpRetries?: string;
  httpRetryBackoff?: string;
  toolTimeout?: string;
  toolOutputCap?: string;
  tools?: string;
  policy?: string[];
  workspace?: string;
  audit?: string;
  system?: string;
  shellEnv?: string[];
  direct?: boolean;
}

export interface Settings {
  model: Sourced<string>;
  baseUrl: Sourced<string>;
  /** Whether the base URL is bottle-gateway's default door (not an explicit other endpoint). */
  viaGateway: boolean;
  apiKeyEnv: Sourced<string>;
  maxSteps: Sourced<number>;
  maxTokens: Sourced<number | undefined>;
  httpTimeoutSec: Sourced<number>;
  httpRetries: Sourced<number>;
  httpRetryBackoffMs: Sourced<number>;
  toolTimeoutSec: Sourced<number>;
  toolOutputCap: Sourced<number>;
  tools: Sourced<string | undefined>;
  policy: Sourced<string[]>;
  workspace: Sourced<string>;
  home: Sourced<string>;
  audit: Sourced<string | undefined>;
  system: Sourced<string>;
  shellEnv: Sourced<string[]>;
  proxy: Sourced<string | undefined>;
  /** With --direct: the provider whose own endpoint is called. */
  direct: Sourced<string | undefined>;
}

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:4100/v1";
export const DEFAULT_MODEL = "openai/gpt-4o-mini";
export const DEFAULT_SYSTEM =
  "You are a careful coding agent working in the user's workspace. Use the tools to read, search and change files and to run commands; every command passes an exec policy, and a refused command comes back as a tool error with the reason: choose another way instead of retrying it. Finish with a short answer saying what you did.";
export const MAX_STEPS_LIMIT = 200;

function pick<T>(
  flag: string | undefined,
  flagName: string,
  env: NodeJS.ProcessEnv,
  envNames: string[],
  def: T,
  parse: (raw: string, where: string) => T,
): Sourced<T> {
  if (flag !== undefined)
    return { value: parse(flag, `flag ${flagName}`), source: `flag ${flagName}` };
  for (const n of envNames) {
    const v = env[n];
    if (v !== undefined && v !== "") return { value: parse(v, `env ${n}`), source: `env ${n}` };
  }
  return { value: def, source: "default" };
}

const int =
  (min: number, max: number) =>
  (raw: string, where: string): number => {
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new AgentCliError(
        "E_USAGE",
        `${where}: "${raw}" is not a whole number from ${min} to ${max}`,
        {
          hint: `give a number such as ${min === 0 ? 2 : min}`,
        },
      );
    }
    return n;
  };

const seconds =
  (max: number) =>
  (raw: string, where: string): number => {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n) || n <= 0 || n > max) {
      throw new AgentCliError(
        "E_USAGE",
        `${where}: "${raw}" is not a number of seconds (0 < s <= ${max})`,
        {
          hint: "e.g. 30 or 2.5",
        },
      );
    }
    return n;
  };

const url = (raw: string, where: string): string => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AgentCliError("E_USAGE", `${where}: "${raw}" is not a URL`, {
      hint: "e.g. http://127.0.0.1:4100/v1",
    });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new AgentCliError("E_USAGE", `${where}: only http and https base URLs are supported`);
  }
  if (u.username !== "" || u.password !== "") {
    throw new AgentCliError("E_USAGE", `${where}: the URL carries credentials`, {
      hint: "put the key in an environment variable and name it with --api-key-env",
    });
  }
  return raw.replace(/\/+$/, "");
};

const envName = (raw: string, where: string): string => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(raw)) {
    throw new AgentCliError("E_USAGE", `${where}: "${raw}" is not an environment variable name`, {
      hint: "name the variable that holds the key (e.g. OPENAI_API_KEY), never the key itself",
    });
  }
  return raw;
};

export function resolveSettings(flags: FlagValues, env: NodeJS.ProcessEnv, cwd: string): Settings {
  const id = (s: string) => s;
  const direct = flags.direct === true || env["AGENTCLI_DIRECT"] === "1";
  if (direct && flags.baseUrl !== undefined) {
    throw new AgentCliError("E_USAGE", "--direct and --base-url are mutually exclusive", {
      hint: "--direct takes the endpoint from the provider in --model; --base-url names one yourself",
    });
  }
  const baseUrl = pick(
    flags.baseUrl,
    "--base-url",
    env,
    ["AGENTCLI_BASE_URL", "BOTTLEKIT_GATEWAY_URL"],
    DEFAULT_GATEWAY_URL,
    url,
  );
  const viaGateway =
    !direct && (baseUrl.source === "default" || baseUrl.source === "env BOTTLEKIT_GATEWAY_URL");
  const model = pick(
    flags.model,
    "--model",
    env,
    ["AGENTCLI_MODEL"],
    DEFAULT_MODEL,
    (raw, where) => {
      const m = raw.trim();
      if (m === "" || /\s/.test(m))
        throw new AgentCliError("E_USAGE", `${where}: "${raw}" is not a model name`);
      if ((viaGateway || direct) && !m.includes("/")) {
        throw new AgentCliError(
          "E_USAGE",
          `${where}: "${raw}": the gateway routes provider/model names`,
          {
            hint: `e.g. openai/${m} or anthropic/${m}`,
          },
        );
      }
      return m;
    },
  );
  const homeDir = env["BOTTLEKIT_HOME"];
  const home: Sourced<string> =
    homeDir !== undefined && homeDir !== ""
      ? { value: resolve(homeDir), source: "env BOTTLEKIT_HOME" }
      : { value: join(env["HOME"] ?? homedir(), ".bottlekit"), source: "default" };
  const policyFlag = flags.policy ?? [];
  const policyEnv = (env["BOTTLEKIT_EXEC_POLICY"] ?? "").split(":").filter((p) => p !== "");
  const policy: Sourced<string[]> =
    policyFlag.length > 0 || policyEnv.length > 0
      ? {
          value: [
            ...policyFlag.map((p) => resolve(cwd, p)),
            ...policyEnv.map((p) => resolve(cwd, p)),
          ],
          source: [
            policyFlag.length > 0 ? "flag --policy" : "",
            policyEnv.length > 0 ? "env BOTTLEKIT_EXEC_POLICY" : "",
          ]
            .filter((x) => x !== "")
            .join(" + "),
        }
      : { value: [], source: "default" };
  const proxyVar = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"].find(
    (n) => (env[n] ?? "") !== "",
  );
  return {
    model,
    baseUrl,
    viaGateway,
    apiKeyEnv: pick(
      flags.apiKeyEnv,
      "--api-key-env",
      env,
      ["AGENTCLI_API_KEY_ENV"],
      viaGateway ? "BOTTLEKIT_GATEWAY_KEY" : "OPENAI_API_KEY",
      envName,
    ),
    maxSteps: pick(
      flags.maxSteps,
      "--max-steps",
      env,
      ["AGENTCLI_MAX_STEPS"],
      20,
      int(1, MAX_STEPS_LIMIT),
    ),
    maxTokens: pick<number | undefined>(
      flags.maxTokens,
      "--max-tokens",
      env,
      ["AGENTCLI_MAX_TOKENS"],
      undefined,
      int(1, 1_000_000_000),
    ),
    httpTimeoutSec: pick(
      flags.httpTimeout,
      "--http-timeout",
      env,
      ["AGENTCLI_HTTP_TIMEOUT"],
      120,
      seconds(3600),
    ),
    httpRetries: pick(
      flags.httpRetries,
      "--http-retries",
      env,
      ["AGENTCLI_HTTP_RETRIES"],
      2,
      int(0, 10),
    ),
    httpRetryBackoffMs: pick(
      flags.httpRetryBackoff,
      "--http-retry-backoff",
      env,
      ["AGENTCLI_HTTP_RETRY_BACKOFF"],
      500,
      int(0, 60_000),
    ),
    toolTimeoutSec: pick(
      flags.toolTimeout,
      "--tool-timeout",
      env,
      ["AGENTCLI_TOOL_TIMEOUT"],
      60,
      seconds(3600),
    ),
    toolOutputCap: pick(
      flags.toolOutputCap,
      "--tool-output-cap",
      env,
      ["AGENTCLI_TOOL_OUTPUT_CAP"],
      64 * 1024,
      int(256, 16 * 1024 * 1024),
    ),
    tools: pick<string | undefined>(
      flags.tools,
      "--tools",
      env,
      ["AGENTCLI_TOOLS"],
      undefined,
      (r) => resolve(cwd, r),
    ),
    policy,
    workspace: pick(flags.workspace, "--workspace", env, ["AGENTCLI_WORKSPACE"], cwd, (r) =>
      resolve(cwd, r),
    ),
    home,
    audit: pick<string | undefined>(
      flags.audit,
      "--audit",
      env,
      ["AGENTCLI_AUDIT"],
      undefined,
      (r) => resolve(cwd, r),
    ),
    system: pick(flags.system, "--system", env, ["AGENTCLI_SYSTEM"], DEFAULT_SYSTEM, id),
    shellEnv:
      flags.shellEnv && flags.shellEnv.length > 0
        ? {
            value: flags.shellEnv.map((n) => envName(n, "flag --shell-env")),
            source: "flag --shell-env",
          }
        : { value: [], source: "default" },
    proxy: proxyVar
      ? { value: env[proxyVar], source: `env ${proxyVar}` }
      : { value: undefined, source: "default" },
    direct: direct
      ? { value: "", source: flags.direct === true ? "flag --direct" : "env AGENTCLI_DIRECT" }
      : { value: undefined, source: "default" },
  };
}

/**
 * `--direct`: call the provider of `--model provider/model` on its own OpenAI-compatible
 * endpoint (from @bottlekit/provider-registry) instead of the gateway. Its key variable is the
 * provider's (unless --api-key-env names one) and the model id loses its provider prefix. Under
 * `bottle run` this goes through the proxy door, where the controller meters it.
 */
export async function applyDirect(
  s: Settings,
  flags: FlagValues,
  env: NodeJS.ProcessEnv,
): Promise<Settings> {
  if (s.direct.value === undefined) return s;
  const { getProvider, listProviders } = await import("@bottlekit/provider-registry");
  const slash = s.model.value.indexOf("/");
  const providerName = s.model.value.slice(0, slash);
  const modelId = s.model.value.slice(slash + 1);
  const p = getProvider(providerName);
  if (p === undefined) {
    const dym = didYouMean(
      suggest(
        providerName,
        listProviders().map((x) => x.id),
      ),
    );
    throw new AgentCliError(
      "E_USAGE",
      `${s.model.source}: unknown provider "${providerName}"${dym ? `; ${dym}` : ""}`,
      {
        hint: "use a provider id of @bottlekit/provider-registry, or --base-url for any other endpoint",
      },
    );
  }
  const ep = p.endpoints["openai-chat"];
  const suffix = "/chat/completions";
  if (
    ep === undefined ||
    p.baseUrl === undefined ||
    !ep.path.endsWith(suffix) ||
    ep.path.includes("{")
  ) {
    throw new AgentCliError(
      "E_USAGE",
      `${s.model.source}: provider "${p.id}" has no OpenAI chat completions endpoint agentcli can call directly`,
      {
        hint: "go through bottle-gateway (drop --direct), or give --base-url of an OpenAI-compatible endpoint",
      },
    );
  }
  const base = `${p.baseUrl.replace(/\/+$/, "")}${ep.path.slice(0, -suffix.length)}`;
  const keyEnv =
    flags.apiKeyEnv !== undefined || (env["AGENTCLI_API_KEY_ENV"] ?? "") !== ""
      ? s.apiKeyEnv
      : {
          value:
            p.apiKeyEnv.find((n) => (env[n] ?? "") !== "") ?? p.apiKeyEnv[0] ?? "OPENAI_API_KEY",
          source: `provider-registry (${p.id})`,
        };
  return {
    ...s,
    baseUrl: { value: base, source: `provider-registry (${p.id})` },
    apiKeyEnv: keyEnv,
    model: { value: modelId, source: s.model.source },
    direct: { value: p.id, source: s.direct.source },
  };
}

/** `--print-config`: every setting with its value and source; the key only as set/unset. */
export function describeSettings(
  s: Settings,
  env: NodeJS.ProcessEnv,
  auditPath: string,
): Record<string, { value: unknown; source: string }> {
  const keySet = (env[s.apiKeyEnv.value] ?? "") !== "";
  const redactUrl = (u: string | undefined) => {
    if (u === undefined) return null;
    try {
      const x = new URL(u);
      if (x.username || x.password) {
        x.username = "***";
        x.password = "";
      }
      return x.toString();
    } catch {
      return "(unparsable)";
    }
  };
  return {
    model: s.model,
    baseUrl: s.baseUrl,
    apiKey: {
      value: keySet ? `set (in ${s.apiKeyEnv.value})` : `unset (${s.apiKeyEnv.value} is empty)`,
      source: s.apiKeyEnv.source,
    },
    maxSteps: s.maxSteps,
    maxTokens: { value: s.maxTokens.value ?? null, source: s.maxTokens.source },
    httpTimeoutSec: s.httpTimeoutSec,
    httpRetries: s.httpRetries,
    httpRetryBackoffMs: s.httpRetryBackoffMs,
    toolTimeoutSec: s.toolTimeoutSec,
    toolOutputCap: s.toolOutputCap,
    tools: { value: s.tools.value ?? null, source: s.tools.source },
    policy: s.policy,
    workspace: s.workspace,
    home: s.home,
    audit: { value: auditPath, source: s.audit.source },
    system: {
      value: s.system.value.length > 80 ? `${s.system.value.slice(0, 77)}...` : s.system.value,
      source: s.system.source,
    },
    shellEnv: s.shellEnv,
    proxy: { value: redactUrl(s.proxy.value), source: s.proxy.source },
    direct: { value: s.direct.value ?? null, source: s.direct.source },
  };
}
