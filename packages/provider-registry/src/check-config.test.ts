import { describe, expect, it, vi } from "vitest";
import type { RegistryConfigData } from "./index.ts";

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

const CONFIGS: RegistryConfigData[] = [
  { model_providers: [] },
  {
    model_providers: [
      { model: "openai/*", access_key: "$OPENAI_API_KEY" },
      { model: "anthropic/*", access_key: "${ANTHROPIC_API_KEY}" },
    ],
  },
  {
    model_providers: [
      { name: "fast", model: "groq/llama-3.3-70b-versatile", default: true },
      { model: "mycorp/llama", provider_interface: "openai", base_url: "http://10.0.0.1/v1/" },
    ],
    model_aliases: { quick: { target: "fast" } },
  },
  // Invalid: a literal key, a custom prefix without base_url, a duplicate, an alias to nowhere.
  {
    model_providers: [
      { model: "openai/gpt-4o", access_key: "sk-literal" },
      { model: "nocorp/x" },
      { model: "openai/gpt-4o" },
    ],
    model_aliases: { a: { target: "nowhere" } },
  },
];

describe("checkRegistryConfig: a config built in code, without the schema", () => {
  it("importing the registry, checking a config and creating its registry build no schema", async () => {
    const { checkRegistryConfig, createRegistry, listProviders } = await import("./index.ts");
    expect(zodReads).toEqual([]);
    const checked = checkRegistryConfig({
      model_providers: listProviders()
        .filter((p) => p.kind === "network" && !p.baseUrlRequired)
        .map((p) => ({ model: `${p.id}/*`, access_key: `$${p.apiKeyEnv[0]}` })),
    });
    expect(checked.errors).toEqual([]);
    const registry = createRegistry(checked.value);
    expect(registry.resolve("anthropic/claude-x").provider).toBe("anthropic");
    expect(zodReads).toEqual([]);
  });

  it("gives what validateRegistryConfig gives for the same data, errors and warnings included", async () => {
    const { checkRegistryConfig, validateRegistryConfig } = await import("./index.ts");
    for (const config of CONFIGS) {
      const checked = checkRegistryConfig(config);
      expect(checked).toEqual(validateRegistryConfig(config));
    }
    expect(checkRegistryConfig(CONFIGS[3] as RegistryConfigData).errors.length).toBe(5);
  });

  it("createRegistry takes a validated value as is, warnings kept; a look-alike object is validated", async () => {
    const { createRegistry, validateRegistryConfig } = await import("./index.ts");
    const v = validateRegistryConfig({
      llm_providers: [{ model: "mycorp/x", provider_interface: "openai", base_url: "http://h/v1" }],
    });
    expect(v.value).toBeDefined();
    const registry = createRegistry(v.value);
    expect(registry.config).toBe(v.value);
    expect(registry.warnings).toEqual(v.warnings);
    expect(registry.warnings.length).toBe(2);
    // Same shape, not from a validation: checked as any input (and refused: unknown keys).
    expect(() => createRegistry({ ...v.value })).toThrow(/providers/);
  });
});
