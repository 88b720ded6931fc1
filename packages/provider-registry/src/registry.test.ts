import { describe, expect, it, vi } from "vitest";
import {
  createRegistry,
  isProviderRegistryError,
  type ResolvedModel,
  type WireApi,
} from "./index.ts";

// The braced ${NAME} env reference form, concatenated so the linter does not read it as a template.
const BRACED_KEY_REF = "$" + "{AZURE_OPENAI_API_KEY}";

const config = {
  model_providers: [
    { model: "openai/gpt-4o", access_key: "$OPENAI_API_KEY", default: true },
    { name: "fast", model: "groq/llama-3.3-70b-versatile", access_key: "$GROQ_KEY" },
    { name: "smart", model: "anthropic/claude-sonnet-4-5" },
    {
      model: "azure_openai/prod-gpt4o",
      base_url: "https://acme.openai.azure.com",
      access_key: BRACED_KEY_REF,
    },
    {
      model: "mycorp/llama-70b",
      provider_interface: "openai",
      base_url: "https://llm.mycorp.internal/v1",
      access_key: "$MYCORP_KEY",
      headers: { "x-team": "platform" },
    },
    {
      model: "mistral/*",
      access_key: "$MISTRAL_KEY",
      base_url: "https://eu.mistral-proxy.example",
    },
    {
      model: "lab/*",
      provider_interface: "openai",
      base_url: "http://127.0.0.1:9000",
      passthrough_auth: true,
    },
    { name: "local-claude", model: "claude-cli/sonnet" },
    { model: "ollama/qwen2.5-coder:7b" },
    { model: "vllm/meta-llama/Llama-3.1-8B-Instruct", base_url: "http://gpu-box:8000" },
  ],
  model_aliases: {
    best: { target: "smart" },
    "team-default": { target: "best" },
    cheap: { target: "fast" },
    internal: { target: "mycorp/llama-70b" },
  },
};

const bare = createRegistry();
const configured = createRegistry(config);

type Expect = Partial<Omit<ResolvedModel, "auth">> & { keyEnv0?: string; authStyle?: string };
type Row = [label: string, input: string, want: Expect | { error: string }, api?: WireApi];

const builtin: Row[] = [
  [
    "router with a slashed model",
    "openrouter/anthropic/claude-3.5-sonnet",
    {
      provider: "openrouter",
      model: "anthropic/claude-3.5-sonnet",
      api: "openai-chat",
      via: "provider-model",
      url: "https://openrouter.ai/api/v1/chat/completions",
    },
  ],
  [
    "mixed-case provider",
    "Anthropic/claude-sonnet-4-5",
    {
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      api: "anthropic-messages",
      url: "https://api.anthropic.com/v1/messages",
      authStyle: "x-api-key",
    },
  ],
  [
    "bare gpt-4o",
    "gpt-4o",
    { provider: "openai", model: "gpt-4o", via: "family", keyEnv0: "OPENAI_API_KEY" },
  ],
  [
    "local agent",
    "claude-cli/sonnet",
    { provider: "claude-cli", model: "sonnet", kind: "local-agent", api: "anthropic-messages" },
  ],
  ["upper-case prefix", "OPENAI/gpt-4o-mini", { provider: "openai", model: "gpt-4o-mini" }],
  ["current openai model", "openai/gpt-5.1", { provider: "openai", model: "gpt-5.1" }],
  ["o3 family", "o3-mini", { provider: "openai", via: "family" }],
  ["o1 family", "o1", { provider: "openai", via: "family" }],
  ["o4 family", "o4-mini", { provider: "openai", via: "family" }],
  ["dated claude", "claude-3-5-haiku-20241022", { provider: "anthropic", via: "family" }],
  [
    "bare gemini speaks gemini",
    "gemini-2.5-pro",
    {
      provider: "gemini",
      api: "gemini",
      url: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent",
      streamUrl:
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
    },
  ],
  ["google alias", "google/gemini-2.5-flash", { provider: "gemini", model: "gemini-2.5-flash" }],
  ["older gemini", "gemini-1.5-flash", { provider: "gemini", via: "family" }],
  ["grok family", "grok-4", { provider: "xai", via: "family", keyEnv0: "XAI_API_KEY" }],
  ["x-ai alias", "x-ai/grok-3", { provider: "xai", model: "grok-3" }],
  ["deepseek family", "deepseek-chat", { provider: "deepseek", via: "family" }],
  [
    "deepseek prefix",
    "deepseek/deepseek-reasoner",
    { provider: "deepseek", url: "https://api.deepseek.com/v1/chat/completions" },
  ],
  ["mistral family", "mistral-large-latest", { provider: "mistral", via: "family" }],
  ["codestral family", "codestral-latest", { provider: "mistral", via: "family" }],
  ["mistralai alias", "mistralai/mistral-small-latest", { provider: "mistral" }],
  [
    "groq path quirk",
    "groq/llama-3.3-70b-versatile",
    {
      provider: "groq",
      url: "https://api.groq.com/openai/v1/chat/completions",
      streamUsageOption: true,
    },
  ],
  [
    "groq slashed model",
    "groq/openai/gpt-oss-120b",
    { provider: "groq", model: "openai/gpt-oss-120b" },
  ],
  [
    "together alias",
    "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
    { provider: "together_ai", model: "meta-llama/Llama-3.3-70B-Instruct-Turbo" },
  ],
  [
    "together_ai id",
    "together_ai/deepseek-ai/DeepSeek-V3",
    { provider: "together_ai", keyEnv0: "TOGETHER_API_KEY" },
  ],
  [
    "fireworks path quirk",
    "fireworks/accounts/fireworks/models/deepseek-v3p1",
    {
      provider: "fireworks",
      model: "accounts/fireworks/models/deepseek-v3p1",
      url: "https://api.fireworks.ai/inference/v1/chat/completions",
    },
  ],
  [
    "fireworks_ai alias",
    "fireworks_ai/accounts/fireworks/models/glm-4p5",
    { provider: "fireworks" },
  ],
  [
    "cerebras",
    "cerebras/gpt-oss-120b",
    { provider: "cerebras", baseUrl: "https://api.cerebras.ai/v1" },
  ],
  [
    "perplexity has no /v1",
    "perplexity/sonar-pro",
    {
      provider: "perplexity",
      url: "https://api.perplexity.ai/chat/completions",
      streamUsageOption: false,
    },
  ],
  ["sonar family", "sonar-reasoning", { provider: "perplexity", via: "family" }],
  [
    "vercel gateway",
    "vercel/anthropic/claude-sonnet-4.5",
    { provider: "vercel", model: "anthropic/claude-sonnet-4.5", keyEnv0: "AI_GATEWAY_API_KEY" },
  ],
  [
    "digitalocean",
    "digitalocean/llama3.3-70b-instruct",
    { provider: "digitalocean", url: "https://inference.do-ai.run/v1/chat/completions" },
  ],
  ["do alias", "do/openai-gpt-oss-120b", { provider: "digitalocean" }],
  ["moonshot", "moonshotai/kimi-k2-0905-preview", { provider: "moonshotai" }],
  ["kimi family", "kimi-k2-turbo-preview", { provider: "moonshotai", via: "family" }],
  [
    "zhipu path quirk",
    "zhipu/glm-4.5",
    { provider: "zhipu", url: "https://open.bigmodel.cn/api/paas/v4/chat/completions" },
  ],
  ["glm family", "glm-4.5-air", { provider: "zhipu", via: "family" }],
  [
    "ollama local",
    "ollama/llama3.2",
    {
      provider: "ollama",
      url: "http://127.0.0.1:11434/v1/chat/completions",
      authStyle: "none",
      kind: "network",
    },
  ],
  [
    "vllm local",
    "vllm/Qwen/Qwen2.5-7B-Instruct",
    { provider: "vllm", model: "Qwen/Qwen2.5-7B-Instruct", baseUrl: "http://127.0.0.1:8000/v1" },
  ],
  [
    "lmstudio local",
    "lmstudio/qwen3-8b",
    { provider: "lmstudio", baseUrl: "http://127.0.0.1:1234/v1" },
  ],
  ["lm_studio alias", "LM_Studio/qwen3-8b", { provider: "lmstudio" }],
  [
    "codex cli",
    "codex-cli/gpt-5-codex",
    { provider: "codex-cli", kind: "local-agent", api: "openai-responses" },
  ],
  ["codex alias", "codex/gpt-5", { provider: "codex-cli", kind: "local-agent" }],
  [
    "gemini cli",
    "gemini-cli/gemini-2.5-pro",
    { provider: "gemini-cli", kind: "local-agent", api: "gemini" },
  ],
  [
    "opencode",
    "opencode/anthropic/claude-sonnet-4-5",
    { provider: "opencode", kind: "local-agent", model: "anthropic/claude-sonnet-4-5" },
  ],
  ["claude-code alias", "Claude-Code/opus", { provider: "claude-cli", kind: "local-agent" }],
  [
    "gemini via its OpenAI surface",
    "gemini/gemini-2.5-pro",
    {
      api: "openai-chat",
      url: "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
      authStyle: "bearer",
    },
    "openai-chat",
  ],
  [
    "openai responses",
    "openai/gpt-4.1",
    { api: "openai-responses", url: "https://api.openai.com/v1/responses" },
    "openai-responses",
  ],
  [
    "api not spoken falls back",
    "anthropic/claude-opus-4-1",
    { api: "anthropic-messages" },
    "openai-chat",
  ],
  ["azure without base URL", "azure_openai/my-deploy", { error: "E_BASE_URL_REQUIRED" }],
  ["azure alias without base URL", "azure/my-deploy", { error: "E_BASE_URL_REQUIRED" }],
  ["typo in provider", "opnai/gpt-4o", { error: "E_UNKNOWN_PROVIDER" }],
  ["typo in bare model", "gpt4o", { error: "E_UNKNOWN_MODEL" }],
  ["bare model of no family", "llama-3.3-70b", { error: "E_UNKNOWN_MODEL" }],
  ["empty", "", { error: "E_INVALID_INPUT" }],
  ["empty model part", "openai/", { error: "E_INVALID_INPUT" }],
];

const withConfig: Row[] = [
  [
    "configured model string",
    "openai/gpt-4o",
    { provider: "openai", via: "name", entry: "openai/gpt-4o", keyEnv0: "OPENAI_API_KEY" },
  ],
  [
    "configured name",
    "fast",
    {
      provider: "groq",
      model: "llama-3.3-70b-versatile",
      via: "name",
      entry: "fast",
      keyEnv0: "GROQ_KEY",
    },
  ],
  [
    "configured name, current model",
    "smart",
    { provider: "anthropic", model: "claude-sonnet-4-5", via: "name" },
  ],
  ["alias", "best", { provider: "anthropic", entry: "smart", aliasChain: ["best"] }],
  [
    "alias chain",
    "team-default",
    { provider: "anthropic", model: "claude-sonnet-4-5", aliasChain: ["team-default", "best"] },
  ],
  ["alias to a name", "cheap", { provider: "groq", entry: "fast" }],
  [
    "alias to a custom prefix",
    "internal",
    {
      provider: "mycorp",
      model: "llama-70b",
      url: "https://llm.mycorp.internal/v1/chat/completions",
      keyEnv0: "MYCORP_KEY",
    },
  ],
  [
    "custom prefix, any case",
    "MyCorp/llama-70b",
    { provider: "mycorp", via: "name", headers: { "x-team": "platform" } },
  ],
  [
    "wildcard wins over built-in defaults",
    "mistral/mistral-large-latest",
    {
      provider: "mistral",
      via: "wildcard",
      baseUrl: "https://eu.mistral-proxy.example/v1",
      keyEnv0: "MISTRAL_KEY",
    },
  ],
  [
    "bare family uses the wildcard's settings",
    "mistral-small-latest",
    {
      provider: "mistral",
      via: "family",
      baseUrl: "https://eu.mistral-proxy.example/v1",
      entry: "mistral/*",
    },
  ],
  [
    "custom wildcard, slashed model",
    "lab/team/model-x",
    {
      provider: "lab",
      model: "team/model-x",
      via: "wildcard",
      baseUrl: "http://127.0.0.1:9000/v1",
    },
  ],
  [
    "azure configured",
    "azure_openai/prod-gpt4o",
    {
      provider: "azure_openai",
      url: "https://acme.openai.azure.com/openai/deployments/prod-gpt4o/chat/completions?api-version=2025-01-01-preview",
      keyEnv0: "AZURE_OPENAI_API_KEY",
      authStyle: "x-api-key",
    },
  ],
  ["bare configured model part", "prod-gpt4o", { provider: "azure_openai", via: "family" }],
  [
    "configured local agent",
    "local-claude",
    { provider: "claude-cli", kind: "local-agent", entry: "local-claude" },
  ],
  ["bare custom model", "llama-70b", { provider: "mycorp", via: "family" }],
  [
    "base_url without path gets /v1",
    "vllm/meta-llama/Llama-3.1-8B-Instruct",
    { baseUrl: "http://gpu-box:8000/v1", via: "name" },
  ],
  [
    "ollama tag with a colon",
    "ollama/qwen2.5-coder:7b",
    { provider: "ollama", model: "qwen2.5-coder:7b", via: "name" },
  ],
  [
    "unconfigured built-in still resolves",
    "openai/gpt-4o-mini",
    { provider: "openai", via: "provider-model" },
  ],
  ["unknown custom prefix", "lab2/x", { error: "E_UNKNOWN_PROVIDER" }],
  ["unconfigured azure deployment", "azure_openai/other-deploy", { error: "E_BASE_URL_REQUIRED" }],
];

function check(registry: ReturnType<typeof createRegistry>, [, input, want, api]: Row) {
  if ("error" in want) {
    let caught: unknown;
    try {
      registry.resolve(input, api ? { api } : undefined);
    } catch (e) {
      caught = e;
    }
    expect(isProviderRegistryError(caught)).toBe(true);
    expect((caught as { code: string }).code).toBe(want.error);
    return;
  }
  const r = registry.resolve(input, api ? { api } : undefined);
  const { keyEnv0, authStyle, ...rest } = want;
  expect(r).toMatchObject(rest);
  if (keyEnv0) expect(r.auth.keyEnv[0]).toBe(keyEnv0);
  if (authStyle) expect(r.auth.style).toBe(authStyle);
}

describe("resolve: built-in catalog", () => {
  it.each(builtin)("%s: %s", (...row) => check(bare, row as Row));
});

describe("resolve: with a Plano-style config", () => {
  it.each(withConfig)("%s: %s", (...row) => check(configured, row as Row));
  it("has at least 60 table cases", () => {
    expect(builtin.length + withConfig.length).toBeGreaterThanOrEqual(60);
  });
});

describe("resolve: behaviour", () => {
  it("caches: a repeated input returns the same frozen object", () => {
    const a = bare.resolve("gpt-4o");
    expect(bare.resolve("gpt-4o")).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.auth)).toBe(true);
  });

  it("evicts the oldest entry past cacheSize and still resolves correctly", () => {
    const r = createRegistry(undefined, { cacheSize: 2 });
    const first = r.resolve("gpt-4o");
    r.resolve("gpt-4o-mini");
    r.resolve("o3");
    const again = r.resolve("gpt-4o");
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it("suggests near names for unknown models and providers", () => {
    expect(() => bare.resolve("gpt4o")).toThrowError(
      expect.objectContaining({ suggestions: expect.arrayContaining(["gpt-4o"]) }),
    );
    expect(() => bare.resolve("opnai/gpt-4o")).toThrowError(
      expect.objectContaining({
        suggestions: ["openai/gpt-4o"],
        message: expect.stringContaining("did you mean"),
      }),
    );
    expect(() => configured.resolve("fsat")).toThrowError(
      expect.objectContaining({ suggestions: expect.arrayContaining(["fast"]) }),
    );
  });

  it("the azure error says how to fix it", () => {
    expect(() => bare.resolve("azure_openai/my-deploy")).toThrowError(
      expect.objectContaining({ hint: expect.stringContaining("base_url") }),
    );
  });

  it("carries env var names, never key values", () => {
    const old = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = "sk-test-secret-value";
    try {
      const r = createRegistry(config).resolve("openai/gpt-4o");
      expect(JSON.stringify(r)).not.toContain("sk-test-secret-value");
      expect(r.auth.keyEnv).toContain("OPENAI_API_KEY");
    } finally {
      if (old === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = old;
    }
  });

  it("exposes the default model and the local-agent capabilities", () => {
    expect(configured.defaultModel).toBe("openai/gpt-4o");
    const r = configured.resolve("local-claude");
    expect(r.localAgent).toMatchObject({ binary: "claude", spawnsSubprocess: true, shell: true });
  });

  it("prices resolved models from the catalog and leaves local agents unpriced", () => {
    expect(bare.resolve("gpt-4o").price?.input).toBeGreaterThan(0);
    expect(bare.resolve("claude-cli/sonnet").price).toBeUndefined();
  });

  it("a cached resolve is O(1): it does one map lookup, however many entries are cached", () => {
    const small = createRegistry();
    const large = createRegistry(undefined, { cacheSize: 5000 });
    const few = ["gpt-4o", "claude-sonnet-4-5", "o3"];
    const many = Array.from({ length: 3000 }, (_, i) => `openai/gpt-4o-variant-${i}`);
    for (const m of few) small.resolve(m);
    for (const m of many) large.resolve(m);
    // Counted work, not time: Map reads and writes during 3,000 cached resolves.
    const lookups = (fn: () => void) => {
      const get = vi.spyOn(Map.prototype, "get");
      const set = vi.spyOn(Map.prototype, "set");
      try {
        fn();
        return { get: get.mock.calls.length, set: set.mock.calls.length };
      } finally {
        get.mockRestore();
        set.mockRestore();
      }
    };
    const s = lookups(() => {
      for (let i = 0; i < 3_000; i++) small.resolve(few[i % 3]!);
    });
    const l = lookups(() => {
      for (let i = 0; i < 3_000; i++) large.resolve(many[(i * 7) % 3000]!);
    });
    expect(s).toEqual({ get: 3_000, set: 0 });
    expect(l).toEqual({ get: 3_000, set: 0 });
  });
});

describe("explain", () => {
  it("lists each step tried and why the alias chain won", () => {
    const e = configured.explain("team-default");
    expect(e.result?.provider).toBe("anthropic");
    expect(e.steps.filter((s) => s.step === "alias" && s.matched).map((s) => s.detail)).toEqual([
      "model_aliases.team-default -> best",
      "model_aliases.best -> smart",
    ]);
    expect(e.summary).toContain("resolved by name");
  });

  it("shows that a wildcard took precedence over the built-in provider", () => {
    const e = configured.explain("mistral/codestral-latest");
    expect(e.steps.map((s) => [s.step, s.matched])).toEqual([
      ["name", false],
      ["alias", false],
      ["provider-model", false],
      ["family", false],
      ["wildcard", true],
    ]);
    expect(e.steps[2]!.detail).toContain("takes precedence");
  });

  it("reports every failed step and the error for an unknown model", () => {
    const e = bare.explain("llama-3.3-70b");
    expect(e.result).toBeUndefined();
    expect(e.error?.code).toBe("E_UNKNOWN_MODEL");
    expect(e.steps).toHaveLength(5);
    expect(e.steps.every((s) => !s.matched)).toBe(true);
  });
});

describe("listModels", () => {
  it("lists configured models first, then the catalog with provenance", () => {
    const list = configured.listModels();
    expect(list[0]).toMatchObject({ id: "openai/gpt-4o", source: "config", default: true });
    expect(list.filter((m) => m.source === "config")).toHaveLength(config.model_providers.length);
    const catalog = list.filter((m) => m.source === "catalog");
    expect(catalog.length).toBeGreaterThan(500);
    for (const m of catalog) expect(m.info?.provenance.source).toMatch(/^@(pydantic|tokenlens)\//);
    expect(configured.listModels({ include: "configured" })).toHaveLength(10);
  });
});

describe("aliases through wildcards", () => {
  it("an alias to a model under a configured provider/* resolves through the wildcard", () => {
    const registry = createRegistry({
      model_providers: [{ model: "openai/*", access_key: "$OPENAI_API_KEY" }],
      model_aliases: { fast: { target: "openai/gpt-4o-mini" } },
    });
    const r = registry.resolve("fast");
    expect(r.provider).toBe("openai");
    expect(r.model).toBe("gpt-4o-mini");
    expect(r.aliasChain).toEqual(["fast"]);
  });
});
