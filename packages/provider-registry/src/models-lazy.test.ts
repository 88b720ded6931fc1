import { describe, expect, it } from "vitest";
import { createRegistry, getProvider, modelTablesLoaded, preloadModelTables } from "./index.ts";

// Its own file: vitest gives each test file a fresh module graph, so nothing here has looked a
// model up before these tests run.
describe("model catalogs load on demand", () => {
  it("importing the registry, reading providers and creating a registry load no catalog", () => {
    expect(getProvider("anthropic")?.id).toBe("anthropic");
    const registry = createRegistry();
    expect(registry).toBeDefined();
    expect(modelTablesLoaded()).toBe(false);
  });

  it("preloadModelTables loads them once, and lookups then agree with a fresh registry", async () => {
    await preloadModelTables();
    expect(modelTablesLoaded()).toBe(true);
    await preloadModelTables();
    const info = createRegistry().resolve("anthropic/claude-sonnet-4-5");
    expect(info.provider).toBe("anthropic");
    expect(info.price?.input).toBeGreaterThan(0);
  });
});
