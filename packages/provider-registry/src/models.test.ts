import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createRegistry,
  GENAI_PRICES_SOURCE,
  GENAI_PRICES_VERSION,
  loadModelOverrides,
  type ModelInfo,
  parseModelOverrides,
  TOKENLENS_SOURCE,
  TOKENLENS_VERSION,
} from "./index.ts";

const PKG = join(import.meta.dirname, "..");
// A fixed date keeps dated price changes out of the snapshot's way.
const PRICE_DATE = new Date("2026-11-01T00:00:00Z");
const registry = createRegistry(undefined, { priceDate: PRICE_DATE });
const perM = (n: number | undefined) =>
  n === undefined ? "-" : String(Math.round(n * 1e6 * 1e6) / 1e6);

describe("model catalog sources", () => {
  it("pins both sources exactly, and the provenance versions match what is installed", () => {
    const pkg = JSON.parse(readFileSync(join(PKG, "package.json"), "utf8"));
    expect(pkg.dependencies[TOKENLENS_SOURCE]).toBe(TOKENLENS_VERSION);
    expect(pkg.dependencies[GENAI_PRICES_SOURCE]).toBe(GENAI_PRICES_VERSION);
    for (const [name, version] of [
      [TOKENLENS_SOURCE, TOKENLENS_VERSION],
      [GENAI_PRICES_SOURCE, GENAI_PRICES_VERSION],
    ] as const) {
      const installed = JSON.parse(
        readFileSync(join(PKG, "node_modules", name, "package.json"), "utf8"),
      );
      expect(installed.version, name).toBe(version);
    }
  });

  it("has prices and limits for current models of the main providers, with provenance", () => {
    const want: [string, string][] = [
      ["anthropic", "claude-sonnet-4-5"],
      ["anthropic", "claude-sonnet-4-20250514"],
      ["openai", "gpt-5.1"],
      ["openai", "gpt-4o"],
      ["gemini", "gemini-2.5-pro"],
      ["xai", "grok-4"],
      ["deepseek", "deepseek-chat"],
      ["mistral", "mistral-large-latest"],
      ["groq", "llama-3.3-70b-versatile"],
    ];
    for (const [p, m] of want) {
      const info = registry.modelInfo(p, m);
      expect(info?.price, `${p}/${m}`).toBeDefined();
      expect(info?.price?.input, `${p}/${m}`).toBeGreaterThan(0);
      expect(info?.limits.contextWindow, `${p}/${m}`).toBeGreaterThan(0);
      expect(info?.price?.provenance).toMatchObject({
        version: expect.any(String),
        key: expect.any(String),
      });
    }
    const sonnet = registry.modelInfo("anthropic", "claude-sonnet-4-20250514")!;
    expect(sonnet.price?.cacheRead).toBeCloseTo(0.3e-6, 12);
    expect(sonnet.price?.cacheWrite).toBeCloseTo(3.75e-6, 12);
    expect(sonnet.limits.maxOutput).toBe(64000);
    expect(sonnet.limits.provenance).toMatchObject({
      source: TOKENLENS_SOURCE,
      upstream: "models.dev",
    });
  });

  it("keeps long-context tiers", () => {
    const pro = registry.modelInfo("gemini", "gemini-2.5-pro")!;
    expect(pro.price?.tiers?.[0]).toMatchObject({ aboveInputTokens: 200000 });
    expect(pro.price?.tiers?.[0]?.input).toBeGreaterThan(pro.price!.input);
  });

  it("prices a router's vendor/model at the vendor's list price and says so", () => {
    const r = registry.resolve("vercel/anthropic/claude-sonnet-4.5");
    expect(r.price?.provenance.via).toBe("anthropic list price passed through by vercel");
    expect(r.price?.input).toBeCloseTo(3e-6, 12);
  });

  it("matches genai-prices ids case-insensitively, as genai-prices does", () => {
    expect(registry.modelInfo("together_ai", "Qwen/Qwen1.5-72B")?.price?.input).toBeCloseTo(
      0.9e-6,
      12,
    );
    expect(registry.modelInfo("openai", "GPT-4o")?.price?.provenance.key).toBe("openai/gpt-4o");
  });

  it("never guesses a price for an unknown model", () => {
    expect(registry.modelInfo("openai", "totally-new-model-x")).toBeUndefined();
    expect(registry.resolve("ollama/llama3.2").price).toBeUndefined();
  });

  it("snapshot: shows when the upstream data changes", async () => {
    const lines = registry
      .listModels({ include: "catalog" })
      .map((m) => m.info as ModelInfo)
      .map((i) =>
        [
          `${i.provider}/${i.id}`,
          `ctx=${i.limits.contextWindow ?? "-"}`,
          `out=${i.limits.maxOutput ?? "-"}`,
          `in=${perM(i.price?.input)}`,
          `out=${perM(i.price?.output)}`,
          `cr=${perM(i.price?.cacheRead)}`,
          `cw=${perM(i.price?.cacheWrite)}`,
          `tiers=${(i.price?.tiers ?? []).map((t) => t.aboveInputTokens).join("|") || "-"}`,
          `src=${i.price?.provenance.key ?? i.provenance.key}${i.price?.provenance.via ? ` via ${i.price.provenance.via}` : ""}`,
        ].join(" "),
      )
      .sort();
    await expect(`${lines.join("\n")}\n`).toMatchFileSnapshot(
      "../test/__snapshots__/model-catalog.txt",
    );
  });
});

describe("model overrides", () => {
  it("override prices and limits win, with provenance", () => {
    const overrides = parseModelOverrides(
      {
        models: {
          "OpenAI/gpt-4o": { input: 1, output: 2, cache_read: 0.5, context_window: 1000 },
          "corp/llama-70b": { input: 0.2, output: 0.4, context_window: 8192, max_output: 4096 },
        },
      },
      "overrides.yml",
    );
    const r = createRegistry(
      {
        model_providers: [
          {
            model: "corp/llama-70b",
            provider_interface: "openai",
            base_url: "https://llm.corp.example",
          },
        ],
      },
      { overrides },
    );
    const gpt = r.resolve("gpt-4o");
    expect(gpt.price).toMatchObject({ input: 1e-6, output: 2e-6, cacheRead: 0.5e-6 });
    expect(gpt.price?.provenance).toEqual({
      source: "override",
      version: "overrides.yml",
      key: "OpenAI/gpt-4o",
    });
    expect(gpt.limits?.contextWindow).toBe(1000);
    expect(gpt.limits?.maxOutput).toBe(16384); // kept from models.dev
    const corp = r.resolve("corp/llama-70b");
    expect(corp.price?.input).toBeCloseTo(0.2e-6, 12);
    expect(corp.limits).toMatchObject({ contextWindow: 8192, maxOutput: 4096 });
    expect(r.listModels({ include: "catalog" }).some((m) => m.id === "corp/llama-70b")).toBe(true);
  });

  it("rejects bad overrides with key paths", () => {
    expect(() => parseModelOverrides({ models: { "openai/x": { input: 1 } } })).toThrowError(
      expect.objectContaining({
        code: "E_OVERRIDES",
        details: ["models.openai/x: a price needs both input and output (USD per million tokens)"],
      }),
    );
    expect(() => parseModelOverrides({ models: { "openai/x": { inputt: 1 } } })).toThrowError(
      expect.objectContaining({
        code: "E_OVERRIDES",
        details: [
          `models["openai/x"].inputt: unknown key, did you mean "input"? (allowed: context_window, max_output, input, output, cache_read, cache_write)`,
        ],
      }),
    );
    expect(() => parseModelOverrides({ models: { nope: {} } })).toThrowError(
      expect.objectContaining({ code: "E_OVERRIDES" }),
    );
  });

  it("loads YAML files and reports parse errors as file:line:col", () => {
    const dir = mkdtempSync(join(tmpdir(), "pr-overrides-"));
    const good = join(dir, "models.yml");
    writeFileSync(good, "models:\n  anthropic/claude-sonnet-4-5:\n    input: 2\n    output: 10\n");
    expect(
      loadModelOverrides(good).get("anthropic", "claude-sonnet-4-5")?.price?.input,
    ).toBeCloseTo(2e-6, 12);
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, "models:\n  x: [1, 2\n");
    expect(() => loadModelOverrides(bad)).toThrowError(
      expect.objectContaining({
        message: expect.stringMatching(/bad\.yml:\d+:\d+: not valid YAML/),
      }),
    );
    expect(() => loadModelOverrides(join(dir, "missing.yml"))).toThrowError(
      expect.objectContaining({ code: "E_OVERRIDES" }),
    );
  });
});
