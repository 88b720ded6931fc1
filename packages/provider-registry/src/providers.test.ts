import { describe, expect, it } from "vitest";
import {
  getProvider,
  isLocalAgentInterface,
  listLocalAgentInterfaces,
  listProviders,
} from "./index.ts";

const REQUIRED_NETWORK = [
  "openai",
  "anthropic",
  "gemini",
  "groq",
  "deepseek",
  "mistral",
  "xai",
  "openrouter",
  "together_ai",
  "fireworks",
  "cerebras",
  "perplexity",
  "vercel",
  "digitalocean",
  "moonshotai",
  "zhipu",
  "azure_openai",
  "ollama",
  "vllm",
  "lmstudio",
];
const REQUIRED_LOCAL = ["claude-cli", "codex-cli", "gemini-cli", "opencode"];

describe("provider catalog", () => {
  it("has every required provider with its kind", () => {
    for (const id of REQUIRED_NETWORK) expect(getProvider(id)?.kind, id).toBe("network");
    for (const id of REQUIRED_LOCAL) expect(getProvider(id)?.kind, id).toBe("local-agent");
    expect(listLocalAgentInterfaces()).toEqual(REQUIRED_LOCAL);
  });

  it("resolves aliases case-insensitively with - and _ interchangeable", () => {
    expect(getProvider("google")?.id).toBe("gemini");
    expect(getProvider("Together")?.id).toBe("together_ai");
    expect(getProvider("together-ai")?.id).toBe("together_ai");
    expect(getProvider("AZURE")?.id).toBe("azure_openai");
    expect(getProvider("do")?.id).toBe("digitalocean");
    expect(getProvider("Claude_CLI")?.id).toBe("claude-cli");
    expect(getProvider("nope")).toBeUndefined();
    expect(getProvider(42 as unknown as string)).toBeUndefined();
  });

  it("isLocalAgentInterface is the one answer to 'is this a local agent'", () => {
    expect(isLocalAgentInterface("claude-cli")).toBe(true);
    expect(isLocalAgentInterface("CLAUDE-CLI")).toBe(true);
    expect(isLocalAgentInterface("codex")).toBe(true);
    expect(isLocalAgentInterface("anthropic")).toBe(false);
    expect(isLocalAgentInterface("chatgpt")).toBe(false);
    expect(isLocalAgentInterface("")).toBe(false);
  });

  it("every entry is complete and frozen", () => {
    const seen = new Set<string>();
    for (const p of listProviders()) {
      expect(Object.isFrozen(p), p.id).toBe(true);
      expect(p.apis.length, p.id).toBeGreaterThan(0);
      for (const name of [p.id, ...p.aliases]) {
        expect(seen.has(name.toLowerCase()), name).toBe(false);
        seen.add(name.toLowerCase());
      }
      if (p.kind === "network") {
        expect(p.baseUrl !== undefined || p.baseUrlRequired, p.id).toBe(true);
        for (const api of p.apis) expect(p.endpoints[api], `${p.id} ${api}`).toBeDefined();
        if (p.auth.style !== "none" && !p.auth.optional)
          expect(p.apiKeyEnv.length, p.id).toBeGreaterThan(0);
        expect(p.localAgent).toBeUndefined();
      } else {
        expect(p.localAgent, p.id).toMatchObject({
          spawnsSubprocess: true,
          productionSuitable: false,
          filesystem: { read: true, write: true },
          shell: true,
          network: "unrestricted",
        });
        expect(p.localAgent?.permissionModes).toContain(p.localAgent?.defaultPermissionMode);
        expect(p.localAgent?.credentials.length).toBeGreaterThan(0);
      }
    }
  });

  it("records auth styles and streamed-usage needs", () => {
    expect(getProvider("anthropic")?.auth).toEqual({ style: "x-api-key", header: "x-api-key" });
    expect(getProvider("azure_openai")?.auth).toEqual({ style: "x-api-key", header: "api-key" });
    expect(getProvider("openai")?.auth.style).toBe("bearer");
    expect(getProvider("ollama")?.auth.style).toBe("none");
    expect(getProvider("openai")?.streamUsageOption).toBe(true);
    expect(getProvider("anthropic")?.streamUsageOption).toBe(false);
    expect(getProvider("gemini")?.apiKeyEnv).toEqual([
      "GEMINI_API_KEY",
      "GOOGLE_API_KEY",
      "GOOGLE_GENERATIVE_AI_API_KEY",
    ]);
    expect(getProvider("azure_openai")?.baseUrlRequired).toBe(true);
  });
});
