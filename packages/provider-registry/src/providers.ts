import type { EndpointInfo, LocalAgentCapabilities, ProviderInfo, WireApi } from "./types.ts";

// The built-in provider catalog. Facts: vendor API docs and Plano's defaults (see
// docs/packages/provider-registry.md). Prices and limits live in the model catalog, not here.

const CHAT: EndpointInfo = { path: "/chat/completions" };
const RESPONSES: EndpointInfo = { path: "/responses" };
const MESSAGES: EndpointInfo = { path: "/messages" };

type ProviderDraft = Omit<ProviderInfo, "baseUrlRequired" | "aliases" | "endpoints"> & {
  aliases?: readonly string[];
  baseUrlRequired?: boolean;
  endpoints?: Partial<Record<WireApi, EndpointInfo>>;
};

function endpointsFor(apis: readonly WireApi[]): Partial<Record<WireApi, EndpointInfo>> {
  const out: Partial<Record<WireApi, EndpointInfo>> = {};
  for (const api of apis) {
    if (api === "openai-chat") out[api] = CHAT;
    else if (api === "openai-responses") out[api] = RESPONSES;
    else if (api === "anthropic-messages") out[api] = MESSAGES;
  }
  return out;
}

function localAgent(caps: Omit<LocalAgentCapabilities, "spawnsSubprocess" | "productionSuitable">) {
  return { ...caps, spawnsSubprocess: true, productionSuitable: false } as const;
}

const DRAFTS: readonly ProviderDraft[] = [
  {
    id: "openai",
    displayName: "OpenAI",
    kind: "network",
    apis: ["openai-chat", "openai-responses"],
    baseUrl: "https://api.openai.com/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["OPENAI_API_KEY"],
    streamUsageOption: true,
    families: [
      /^gpt-/,
      /^o[134](-|$)/,
      /^chatgpt-/,
      /^codex-/,
      /^text-embedding-/,
      /^computer-use-/,
      /^omni-moderation/,
    ],
    catalogKey: "openai",
    docs: "https://platform.openai.com/docs/api-reference",
  },
  {
    id: "anthropic",
    displayName: "Anthropic",
    kind: "network",
    apis: ["anthropic-messages"],
    baseUrl: "https://api.anthropic.com/v1",
    auth: { style: "x-api-key", header: "x-api-key" },
    apiKeyEnv: ["ANTHROPIC_API_KEY"],
    headers: { "anthropic-version": "2023-06-01" },
    streamUsageOption: false,
    families: [/^claude-/],
    catalogKey: "anthropic",
    docs: "https://docs.anthropic.com/en/api/messages",
  },
  {
    id: "gemini",
    displayName: "Google Gemini",
    aliases: ["google", "google_ai", "google-ai-studio", "googleai"],
    kind: "network",
    apis: ["gemini", "openai-chat"],
    baseUrl: "https://generativelanguage.googleapis.com/v1beta",
    endpoints: {
      gemini: {
        path: "/models/{model}:generateContent",
        streamPath: "/models/{model}:streamGenerateContent?alt=sse",
      },
      // Quirk: the OpenAI-compatible surface sits under /v1beta/openai and takes a bearer key.
      "openai-chat": { path: "/openai/chat/completions", auth: { style: "bearer" } },
    },
    // The key goes in a header rather than `?key=` so it never lands in URL logs.
    auth: { style: "x-api-key", header: "x-goog-api-key" },
    apiKeyEnv: ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY"],
    streamUsageOption: true,
    families: [/^gemini-/, /^gemma-/, /^learnlm-/],
    catalogKey: "google",
    docs: "https://ai.google.dev/api",
  },
  {
    id: "groq",
    displayName: "Groq",
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.groq.com/openai/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["GROQ_API_KEY"],
    streamUsageOption: true,
    catalogKey: "groq",
    docs: "https://console.groq.com/docs/openai",
  },
  {
    id: "deepseek",
    displayName: "DeepSeek",
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.deepseek.com/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["DEEPSEEK_API_KEY"],
    streamUsageOption: true,
    families: [/^deepseek-/],
    catalogKey: "deepseek",
    docs: "https://api-docs.deepseek.com/",
  },
  {
    id: "mistral",
    displayName: "Mistral AI",
    aliases: ["mistralai", "mistral_ai"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.mistral.ai/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["MISTRAL_API_KEY"],
    // Mistral reports usage in the last streamed chunk without being asked.
    streamUsageOption: false,
    families: [
      /^mistral-/,
      /^ministral-/,
      /^magistral-/,
      /^codestral-/,
      /^devstral-/,
      /^pixtral-/,
      /^voxtral-/,
      /^open-mi[sx]tral-/,
    ],
    catalogKey: "mistral",
    docs: "https://docs.mistral.ai/api/",
  },
  {
    id: "xai",
    displayName: "xAI",
    aliases: ["x-ai", "grok"],
    kind: "network",
    apis: ["openai-chat", "openai-responses"],
    baseUrl: "https://api.x.ai/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["XAI_API_KEY"],
    streamUsageOption: true,
    families: [/^grok-/],
    catalogKey: "xai",
    docs: "https://docs.x.ai/docs/api-reference",
  },
  {
    id: "openrouter",
    displayName: "OpenRouter",
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://openrouter.ai/api/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["OPENROUTER_API_KEY"],
    streamUsageOption: true,
    catalogKey: "openrouter",
    passesThroughVendorPrices: true,
    docs: "https://openrouter.ai/docs/api-reference/overview",
  },
  {
    id: "together_ai",
    displayName: "Together AI",
    aliases: ["together", "togetherai"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.together.xyz/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["TOGETHER_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY"],
    streamUsageOption: true,
    catalogKey: "togetherai",
    docs: "https://docs.together.ai/docs/openai-api-compatibility",
  },
  {
    id: "fireworks",
    displayName: "Fireworks AI",
    aliases: ["fireworks_ai", "fireworksai"],
    kind: "network",
    apis: ["openai-chat"],
    // Quirk: the OpenAI surface lives under /inference/v1.
    baseUrl: "https://api.fireworks.ai/inference/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"],
    streamUsageOption: true,
    catalogKey: "fireworks-ai",
    docs: "https://docs.fireworks.ai/tools-sdks/openai-compatibility",
  },
  {
    id: "cerebras",
    displayName: "Cerebras",
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.cerebras.ai/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["CEREBRAS_API_KEY"],
    streamUsageOption: true,
    catalogKey: "cerebras",
    docs: "https://inference-docs.cerebras.ai/resources/openai",
  },
  {
    id: "perplexity",
    displayName: "Perplexity",
    aliases: ["perplexity_ai", "pplx"],
    kind: "network",
    apis: ["openai-chat"],
    // Quirk: no /v1 prefix; chat completions sit at the root.
    baseUrl: "https://api.perplexity.ai",
    auth: { style: "bearer" },
    apiKeyEnv: ["PERPLEXITY_API_KEY", "PPLX_API_KEY"],
    // Perplexity reports usage in streamed chunks without being asked.
    streamUsageOption: false,
    families: [/^sonar(-|$)/],
    catalogKey: "perplexity",
    docs: "https://docs.perplexity.ai/api-reference/chat-completions-post",
  },
  {
    id: "vercel",
    displayName: "Vercel AI Gateway",
    aliases: ["vercel_ai_gateway", "ai-gateway"],
    kind: "network",
    apis: ["openai-chat", "openai-responses"],
    baseUrl: "https://ai-gateway.vercel.sh/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["AI_GATEWAY_API_KEY", "VERCEL_AI_GATEWAY_API_KEY"],
    streamUsageOption: true,
    catalogKey: "vercel",
    passesThroughVendorPrices: true,
    docs: "https://vercel.com/docs/ai-gateway/openai-compat",
  },
  {
    id: "digitalocean",
    displayName: "DigitalOcean Gradient",
    aliases: ["do", "do_ai", "gradient"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://inference.do-ai.run/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["DO_API_KEY", "DIGITALOCEAN_API_KEY", "GRADIENT_MODEL_ACCESS_KEY"],
    streamUsageOption: true,
    passesThroughVendorPrices: true,
    docs: "https://docs.digitalocean.com/products/gradient-ai-platform/how-to/use-serverless-inference/",
  },
  {
    id: "moonshotai",
    displayName: "Moonshot AI",
    aliases: ["moonshot", "kimi"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "https://api.moonshot.ai/v1",
    auth: { style: "bearer" },
    apiKeyEnv: ["MOONSHOT_API_KEY", "MOONSHOTAI_API_KEY"],
    streamUsageOption: true,
    families: [/^kimi-/, /^moonshot-v1/],
    catalogKey: "moonshotai",
    docs: "https://platform.moonshot.ai/docs/api/chat",
  },
  {
    id: "zhipu",
    displayName: "Zhipu AI (BigModel)",
    aliases: ["zhipuai", "bigmodel"],
    kind: "network",
    apis: ["openai-chat"],
    // Quirk: the OpenAI surface is /api/paas/v4.
    baseUrl: "https://open.bigmodel.cn/api/paas/v4",
    auth: { style: "bearer" },
    apiKeyEnv: ["ZHIPU_API_KEY", "ZHIPUAI_API_KEY"],
    // Zhipu always sends usage in the final chunk.
    streamUsageOption: false,
    families: [/^glm-/],
    catalogKey: "zhipuai",
    docs: "https://docs.bigmodel.cn/api-reference",
  },
  {
    id: "azure_openai",
    displayName: "Azure OpenAI",
    aliases: ["azure", "azureopenai"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrlRequired: true,
    endpoints: {
      // Quirk: the model part is the *deployment* name, and api-version is mandatory.
      "openai-chat": {
        path: "/openai/deployments/{model}/chat/completions?api-version=2025-01-01-preview",
      },
    },
    auth: { style: "x-api-key", header: "api-key" },
    apiKeyEnv: ["AZURE_OPENAI_API_KEY", "AZURE_API_KEY"],
    streamUsageOption: true,
    catalogKey: "azure",
    docs: "https://learn.microsoft.com/azure/ai-foundry/openai/reference",
  },
  {
    id: "ollama",
    displayName: "Ollama (local)",
    aliases: ["ollama_chat"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "http://127.0.0.1:11434/v1",
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: true,
    docs: "https://github.com/ollama/ollama/blob/main/docs/openai.md",
  },
  {
    id: "vllm",
    displayName: "vLLM (local OpenAI-compatible server)",
    aliases: ["hosted_vllm"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "http://127.0.0.1:8000/v1",
    auth: { style: "bearer", optional: true },
    apiKeyEnv: ["VLLM_API_KEY"],
    streamUsageOption: true,
    docs: "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
  },
  {
    id: "lmstudio",
    displayName: "LM Studio (local)",
    aliases: ["lm_studio"],
    kind: "network",
    apis: ["openai-chat"],
    baseUrl: "http://127.0.0.1:1234/v1",
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: true,
    catalogKey: "lmstudio",
    docs: "https://lmstudio.ai/docs/app/api/endpoints/openai",
  },
  // Local agents: CLIs spawned as the operator. Capabilities describe what the CLI can do on the
  // host at its default permission mode; the gateway bridges requests into the subprocess.
  {
    id: "claude-cli",
    displayName: "Claude Code CLI",
    aliases: ["claude-code", "claudecode"],
    kind: "local-agent",
    apis: ["anthropic-messages"],
    baseUrl: "http://127.0.0.1:14001",
    endpoints: { "anthropic-messages": { path: "/v1/messages" } },
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: false,
    docs: "https://docs.anthropic.com/en/docs/claude-code/cli-reference",
    localAgent: localAgent({
      binary: "claude",
      binaryEnv: "CLAUDE_CLI_BIN",
      defaultPermissionMode: "bypassPermissions",
      permissionModes: ["plan", "default", "acceptEdits", "bypassPermissions"],
      filesystem: { read: true, write: true },
      shell: true,
      network: "unrestricted",
      credentials: "the host's Claude login (~/.claude) or ANTHROPIC_API_KEY",
    }),
  },
  {
    id: "codex-cli",
    displayName: "OpenAI Codex CLI",
    aliases: ["codex"],
    kind: "local-agent",
    apis: ["openai-responses"],
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: false,
    docs: "https://developers.openai.com/codex/cli",
    localAgent: localAgent({
      binary: "codex",
      binaryEnv: "CODEX_CLI_BIN",
      defaultPermissionMode: "workspace-write",
      permissionModes: ["read-only", "workspace-write", "danger-full-access"],
      filesystem: { read: true, write: true },
      shell: true,
      network: "unrestricted",
      credentials: "the host's Codex/ChatGPT login (~/.codex/auth.json) or OPENAI_API_KEY",
    }),
  },
  {
    id: "gemini-cli",
    displayName: "Gemini CLI",
    kind: "local-agent",
    apis: ["gemini"],
    endpoints: {},
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: false,
    docs: "https://github.com/google-gemini/gemini-cli",
    localAgent: localAgent({
      binary: "gemini",
      binaryEnv: "GEMINI_CLI_BIN",
      defaultPermissionMode: "default",
      permissionModes: ["default", "auto_edit", "yolo"],
      filesystem: { read: true, write: true },
      shell: true,
      network: "unrestricted",
      credentials: "the host's Google login (~/.gemini) or GEMINI_API_KEY",
    }),
  },
  {
    id: "opencode",
    displayName: "opencode",
    aliases: ["opencode-cli", "open-code"],
    kind: "local-agent",
    apis: ["openai-chat"],
    auth: { style: "none" },
    apiKeyEnv: [],
    streamUsageOption: false,
    docs: "https://opencode.ai/docs/cli/",
    localAgent: localAgent({
      binary: "opencode",
      binaryEnv: "OPENCODE_CLI_BIN",
      // opencode allows edits and commands without asking unless its config says otherwise.
      defaultPermissionMode: "allow",
      permissionModes: ["deny", "ask", "allow"],
      filesystem: { read: true, write: true },
      shell: true,
      network: "unrestricted",
      credentials: "provider keys stored by opencode (~/.local/share/opencode/auth.json)",
    }),
  },
];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof RegExp)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function finish(draft: ProviderDraft): ProviderInfo {
  return deepFreeze({
    ...draft,
    aliases: draft.aliases ?? [],
    baseUrlRequired: draft.baseUrlRequired ?? false,
    endpoints: draft.endpoints ?? endpointsFor(draft.apis),
  });
}

const PROVIDERS: readonly ProviderInfo[] = Object.freeze(DRAFTS.map(finish));

/** Lookup key for provider ids: case-insensitive, `-` and `_` interchangeable. */
export function providerKey(idOrAlias: string): string {
  return idOrAlias.trim().toLowerCase().replaceAll("_", "-");
}

const BY_KEY: ReadonlyMap<string, ProviderInfo> = (() => {
  const map = new Map<string, ProviderInfo>();
  for (const p of PROVIDERS) {
    for (const name of [p.id, ...p.aliases]) {
      const key = providerKey(name);
      if (map.has(key)) throw new Error(`provider catalog: duplicate id or alias "${name}"`);
      map.set(key, p);
    }
  }
  return map;
})();

/** Every built-in provider, network providers first, in catalog order. */
export function listProviders(): readonly ProviderInfo[] {
  return PROVIDERS;
}

/** The provider with this id or alias (case-insensitive, `-`/`_` interchangeable), or undefined. O(1). */
export function getProvider(idOrAlias: string): ProviderInfo | undefined {
  if (typeof idOrAlias !== "string") return undefined;
  return BY_KEY.get(providerKey(idOrAlias));
}

/** True when `idOrAlias` names a local-agent provider (`claude-cli`, `Claude-Code`, `codex`, …). */
export function isLocalAgentInterface(idOrAlias: string): boolean {
  return getProvider(idOrAlias)?.kind === "local-agent";
}

/** Canonical ids of every local-agent provider. */
export function listLocalAgentInterfaces(): readonly string[] {
  return PROVIDERS.filter((p) => p.kind === "local-agent").map((p) => p.id);
}

/** Every id and alias, for "did you mean" suggestions. */
export function allProviderNames(): readonly string[] {
  return PROVIDERS.flatMap((p) => [p.id, ...p.aliases]);
}
