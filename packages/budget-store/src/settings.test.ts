import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "./open.ts";
import {
  applySettings,
  budgetsFromSettings,
  loadSettings,
  parseSettings,
  settingsJsonSchema,
} from "./settings.ts";

const home = mkdtempSync(join(tmpdir(), "budget-store-settings-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const GOOD = `# host budgets
shutdown: freeze
reservation_ttl: 300
budget:
  anthropic: 5000000
  openai:
    tokens: 2000000
    usd: 40
    window: monthly
    policy: kill
ceiling:
  anthropic: 20000000
bottles:
  web:
    budget:
      anthropic: { tokens: 100000, window: daily }
agents:
  coder:
    budget:
      openai: 50000
`;

describe("parseSettings", () => {
  it("accepts the documented shape", () => {
    const r = parseSettings(GOOD);
    expect(r.errors).toEqual([]);
    expect(r.value?.shutdown).toBe("freeze");
    expect(budgetsFromSettings(r.value ?? {})).toEqual([
      { scope: "global", provider: "anthropic", source: "settings", tokens: 5_000_000 },
      {
        scope: "global",
        provider: "openai",
        source: "settings",
        tokens: 2_000_000,
        usd: 40,
        window: "monthly",
        policy: "kill",
      },
      { scope: "ceiling", provider: "anthropic", source: "settings", tokens: 20_000_000 },
      {
        scope: "bottle",
        key: "web",
        provider: "anthropic",
        source: "settings",
        tokens: 100_000,
        window: "daily",
      },
      { scope: "agent", key: "coder", provider: "openai", source: "settings", tokens: 50_000 },
    ]);
  });

  it("an empty file is empty settings", () => {
    expect(parseSettings("")).toEqual({ value: {}, warnings: [], errors: [] });
  });

  it("reports unknown keys with line:col, key path and a suggestion", () => {
    const r = parseSettings("shutdown: cutoff\nbudgets:\n  anthropic: 5\n", "/h/settings.yml");
    expect(r.value).toBeUndefined();
    expect(r.errors).toEqual([
      '/h/settings.yml:2:1: budgets: unknown key (did you mean "budget"?)',
    ]);
  });

  it("reports bad values at the value's line", () => {
    const r = parseSettings(
      "budget:\n  anthropic:\n    tokens: 10\n    window: hourly\n  openai: -5\n",
    );
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(/^settings\.yml:4:13: budget\.anthropic\.window: window must be/);
    expect(r.errors[1]).toMatch(/^settings\.yml:5:11: budget\.openai: /);
  });

  it("reports a limit object with neither tokens nor usd, and a bad policy", () => {
    const r = parseSettings("shutdown: stop\nbudget:\n  anthropic: { window: daily }\n");
    expect(r.errors.some((e) => e.startsWith("settings.yml:1:11: shutdown:"))).toBe(true);
    expect(r.errors.some((e) => e.includes("budget.anthropic"))).toBe(true);
  });

  it("reports YAML syntax errors and duplicate keys with positions", () => {
    expect(parseSettings("budget: [1, 2\n").errors[0]).toMatch(/^settings\.yml:\d+:\d+: /);
    const dup = parseSettings("shutdown: kill\nshutdown: freeze\n");
    expect(dup.errors[0]).toMatch(/^settings\.yml:2:1: .*unique/i);
  });

  it("reports unresolved aliases instead of throwing", () => {
    expect(parseSettings("budget: *nope\n").errors[0]).toMatch(/^settings\.yml: .*alias/i);
  });

  it("warns about USD-only budgets", () => {
    const r = parseSettings("budget:\n  openai: { usd: 5 }\n");
    expect(r.errors).toEqual([]);
    expect(r.warnings[0]).toMatch(/^settings\.yml:2:11: budget\.openai: only a USD limit/);
  });

  it("never throws on arbitrary input (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const r = parseSettings(text);
        expect(r.value === undefined).toBe(r.errors.length > 0);
      }),
      { numRuns: 300 },
    );
    const yamlish = fc
      .array(
        fc.tuple(
          fc.constantFrom(
            "budget",
            "ceiling",
            "shutdown",
            "bottles",
            "agents",
            "bugdet",
            "  anthropic",
            "    tokens",
            "    window",
          ),
          fc.constantFrom("5", "-1", "daily", "{ tokens: 3 }", "kill", "", "[1]", "x: y"),
        ),
        { maxLength: 8 },
      )
      .map((lines) => lines.map(([k, v]) => `${k}: ${v}`).join("\n"));
    fc.assert(
      fc.property(yamlish, (text) => {
        const r = parseSettings(text);
        for (const e of r.errors) expect(e).toMatch(/^settings\.yml(:\d+:\d+)?: /);
      }),
      { numRuns: 300 },
    );
  });

  it("has a JSON Schema generated from the zod schema", () => {
    expect(settingsJsonSchema).toMatchSnapshot();
  });
});

describe("loadSettings", () => {
  it("returns empty settings when the file is missing", () => {
    const empty = mkdtempSync(join(home, "empty-"));
    expect(loadSettings(empty)).toEqual({
      settings: {},
      warnings: [],
      path: join(empty, "settings.yml"),
      found: false,
    });
  });

  it("reads and validates $HOME/settings.yml, and fails closed on errors", () => {
    writeFileSync(join(home, "settings.yml"), GOOD);
    expect(loadSettings(home).settings.budget?.["anthropic"]).toBe(5_000_000);
    writeFileSync(join(home, "settings.yml"), "budget:\n  anthropic: lots\n");
    expect(() => loadSettings(home)).toThrow(
      expect.objectContaining({
        code: "E_SETTINGS",
        message: expect.stringContaining("settings.yml:2:14"),
      }),
    );
  });

  it("applySettings replaces settings budgets and sets the default policy", async () => {
    const store = await openStore("sqlite::memory:");
    try {
      await store.defineBudget({ scope: "global", provider: "stale", tokens: 1 });
      await store.defineBudget({
        scope: "bottle",
        key: "web",
        provider: "anthropic",
        tokens: 7,
        source: "flag",
      });
      await applySettings(store, parseSettings(GOOD).value ?? {});
      expect(await store.getDefaultPolicy()).toBe("freeze");
      const all = await store.listBudgets();
      expect(all.some((b) => b.provider === "stale")).toBe(false);
      expect(all.filter((b) => b.source === "flag")).toHaveLength(1);
      expect(all.filter((b) => b.source === "settings")).toHaveLength(5);
    } finally {
      await store.close();
    }
  });
});
