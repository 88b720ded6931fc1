import { listProviders } from "@bottlekit/provider-registry";
import { describe, expect, it, vi } from "vitest";

// Its own file: vitest gives each test file a fresh module graph, so what the imports below
// touch is theirs alone.

/** Every read of zod's `z` (schemas built or run) in this file's module graph. */
const zodReads = vi.hoisted(() => [] as PropertyKey[]);
vi.mock("zod", async (importOriginal) => {
  const real = await importOriginal<typeof import("zod")>();
  return {
    ...real,
    z: new Proxy(real.z, {
      get(target, key, receiver) {
        zodReads.push(key);
        return Reflect.get(target, key, receiver);
      },
    }),
  };
});
/** Set when the local-CLI bridges' module (and @bottlekit/local-agent-warning) is loaded. */
const loaded = vi.hoisted(() => ({ localAgentWarning: false }));
vi.mock("@bottlekit/local-agent-warning", async (importOriginal) => {
  loaded.localAgentWarning = true;
  return importOriginal();
});

const ALL_KEYS: NodeJS.ProcessEnv = Object.fromEntries(
  listProviders()
    .filter((p) => p.kind === "network")
    .map((p) => [p.apiKeyEnv[0], "sk-zero-config-test-0123456789"]),
);

describe("zero-config (the embedded start's config)", () => {
  it("importing the gateway and resolving it build no schema and load no local-CLI bridge", async () => {
    const { resolveConfig } = await import("./compose.ts");
    const { createRegistry } = await import("@bottlekit/provider-registry");
    expect(zodReads).toEqual([]);
    expect(loaded.localAgentWarning).toBe(false);
    for (const env of [{}, { ANTHROPIC_API_KEY: "sk-ant-x" }, ALL_KEYS]) {
      const v = await resolveConfig({ env });
      expect(v.errors).toEqual([]);
      expect("registry" in v && v.registry !== undefined).toBe(true);
      if ("registry" in v && v.registry !== undefined) createRegistry(v.registry);
    }
    expect(zodReads).toEqual([]);
    expect(loaded.localAgentWarning).toBe(false);
  });

  it("gives the value the schema gives for the same providers: its defaults and registry", async () => {
    const { zeroConfigProviders } = await import("./compose.ts");
    const { validateGatewayConfig, zeroConfigValidation } = await import("./config.ts");
    const { validateRegistryConfig } = await import("@bottlekit/provider-registry");
    for (const env of [{}, { OPENAI_API_KEY: "sk-x" }, ALL_KEYS]) {
      const providers = zeroConfigProviders(env);
      const direct = zeroConfigValidation(providers);
      const schema = validateGatewayConfig({ model_providers: providers });
      expect(direct.value).toEqual(schema.value);
      expect(direct.registryInput).toEqual(schema.registryInput);
      expect(direct.warnings).toEqual(schema.warnings);
      expect(direct.errors).toEqual(schema.errors);
      expect(direct.registry).toEqual(validateRegistryConfig(schema.registryInput).value);
    }
    expect(zeroConfigProviders(ALL_KEYS).length).toBeGreaterThan(5);
    expect(zodReads.length).toBeGreaterThan(0); // the schema ran, in this test only
  });

  it("defaults are fresh objects each time: a caller changing one changes no other config", async () => {
    const { validateGatewayConfig, zeroConfigValidation } = await import("./config.ts");
    const a = zeroConfigValidation([]).value;
    a?.dlp.outbound.known_secret_env.push("CHANGED");
    a?.budgets.push({ scope: "global", provider: "openai", tokens: 1 });
    expect(zeroConfigValidation([]).value?.dlp.outbound.known_secret_env).toEqual([]);
    expect(validateGatewayConfig({}).value?.dlp.outbound.known_secret_env).toEqual([]);
    expect(validateGatewayConfig({}).value?.budgets).toEqual([]);
  });
});
