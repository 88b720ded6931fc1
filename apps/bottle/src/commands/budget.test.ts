import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openStore } from "@bottlekit/budget-store";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";
import { OPERATOR_SOURCE, parseBudgetSpec } from "./budget.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("bk-budget-");
});
afterEach(() => home.cleanup());

const db = () => join(home.dir, "bottlekit.db");

describe("bottle budget", () => {
  it("set stores an operator budget; list shows it; rm removes it", async () => {
    const set = await bottle(
      [
        "budget",
        "set",
        "bottle",
        "dev",
        "anthropic=200k/daily",
        "--usd",
        "5",
        "--policy",
        "freeze",
        "--json",
      ],
      home.env,
    );
    expect(set.code).toBe(0);
    expect(JSON.parse(set.out).budget).toMatchObject({
      scope: "bottle",
      key: "dev",
      provider: "anthropic",
      tokens: 200_000,
      usd: 5,
      window: "daily",
      policy: "freeze",
      source: OPERATOR_SOURCE,
    });
    const store = await openStore(`sqlite:${db()}`);
    expect(await store.listBudgets({ key: "dev" })).toHaveLength(1);
    await store.close();

    await bottle(["budget", "set", "global", "*", "openai=1m"], home.env);
    const list = await bottle(["budget", "list"], home.env);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(
      /bottle\s+dev\s+anthropic\s+200,000\s+0\s+\$5\s+\$0\.00\s+daily\s+freeze\s+operator/,
    );
    expect(list.out).toMatch(/global\s+\*\s+openai\s+1,000,000\s+0\s+-\s+-\s+none\s+\(cutoff\)/);
    const only = JSON.parse(
      (await bottle(["budget", "list", "--scope", "global", "--json"], home.env)).out,
    );
    expect(only.budgets.map((b: { key: string }) => b.key)).toEqual(["*"]);

    const rm = await bottle(["budget", "rm", "bottle", "dev", "anthropic"], home.env);
    expect(rm.code).toBe(0);
    expect(rm.out).toContain("removed 1 budget");
    const again = await bottle(["budget", "rm", "bottle", "dev"], home.env);
    expect(again.code).toBe(1);
    expect(again.err).toContain("no operator budget matched");
  });

  it("invalid budgets are usage errors naming the fix, and nothing is written", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["budget", "set", "botle", "dev", "openai=1k"], /did you mean "bottle"/],
      [["budget", "set", "bottle", "dev", "openai=lots"], /not <provider>=<tokens>/],
      [["budget", "set", "bottle", "dev", "openai=1k/hourly"], /unknown window "hourly"/],
      [["budget", "set", "bottle", "dev", "openai"], /sets no limit/],
      [["budget", "set", "global", "dev", "openai=1k"], /key must be "\*"/],
      [["budget", "set", "bottle", "*", "openai=1k"], /not a bottle name/],
      [["budget", "set", "bottle", "dev", "openai=1k", "--policy", "stop"], /--policy/],
      [["budget", "set", "bottle", "dev", "openai=1k", "--usd", "-3"], /--usd "-3"/],
      [["budget", "set", "bottle", "dev", "openai=0.5"], /whole number/],
    ];
    for (const [argv, message] of cases) {
      const r = await bottle(argv, home.env);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err).toContain("hint:");
    }
    const store = await openStore(`sqlite:${db()}`);
    expect(await store.listBudgets()).toEqual([]);
    await store.close();
  });

  it("on a database written by the previous release (schema v2): the migration keeps every row, the gateway's old flag budgets become config, operator budgets sit beside them", async () => {
    const fixture = join(
      dirname(fileURLToPath(import.meta.url)),
      "..",
      "..",
      "test",
      "fixtures",
      "store-v2",
      "bottlekit.db",
    );
    copyFileSync(fixture, db());
    const list = await bottle(["budget", "list", "--json"], home.env);
    expect(list.code).toBe(0);
    const sources = JSON.parse(list.out).budgets.map(
      (b: { scope: string; key: string; source: string }) => `${b.scope}/${b.key}/${b.source}`,
    );
    expect(sources.sort()).toEqual(["bottle/web/config", "global/*/settings"]);
    const set = await bottle(["budget", "set", "bottle", "web", "openai=50k", "--json"], home.env);
    expect(JSON.parse(set.out).budget).toMatchObject({ source: "operator", tokens: 50_000 });
    const both = JSON.parse(
      (await bottle(["budget", "list", "--key", "web", "--json"], home.env)).out,
    );
    const bySource = Object.fromEntries(
      both.budgets.map((b: { source: string; effective: boolean; used: { tokens: number } }) => [
        b.source,
        [b.effective, b.used.tokens],
      ]),
    );
    // The operator's budget outranks the config's; both count the ledger's 1,120 tokens of web.
    expect(bySource).toEqual({ config: [false, 1_120], operator: [true, 1_120] });
    const text = await bottle(["budget", "list", "--key", "web"], home.env);
    expect(text.out).toMatch(/bottle\s+web\s+openai\s+80,000\s+1,120\s+.*config \(shadowed\)/);
    // The old ledger and audit trail read as before.
    const usage = JSON.parse((await bottle(["usage", "--by", "bottle", "--json"], home.env)).out);
    expect(
      usage.groups.map((g: { bottle: string; tokens: number }) => [g.bottle, g.tokens]),
    ).toEqual([
      ["api", 55],
      ["web", 1_120],
    ]);
    const actions = JSON.parse((await bottle(["actions", "--json"], home.env)).out);
    expect(actions.actions).toMatchObject([{ bottle: "api", action: "cutoff", by: "ops" }]);
    // rm removes only the operator's budget unless told otherwise.
    expect((await bottle(["budget", "rm", "bottle", "web"], home.env)).code).toBe(0);
    const left = JSON.parse(
      (await bottle(["budget", "list", "--key", "web", "--json"], home.env)).out,
    );
    expect(left.budgets.map((b: { source: string }) => b.source)).toEqual(["config"]);
  });

  it("warns about a provider bottlekit does not know (a custom one is allowed)", async () => {
    const r = await bottle(["budget", "set", "bottle", "dev", "opneai=1k"], home.env);
    expect(r.code).toBe(0);
    expect(r.err).toContain(
      'warning: "opneai" is not a provider bottlekit knows; did you mean "openai"?',
    );
    const ok = await bottle(["budget", "set", "bottle", "dev", "anthropic=1k"], home.env);
    expect(ok.err).toBe("");
  });

  it("a usd-only budget is accepted", async () => {
    const r = await bottle(
      ["budget", "set", "agent", "ops", "openai/monthly", "--usd", "20", "--json"],
      home.env,
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).budget).toMatchObject({ tokens: null, usd: 20, window: "monthly" });
  });

  it("parseBudgetSpec: any input either parses to a valid budget or throws a usage error", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (spec, key) => {
        try {
          const b = parseBudgetSpec("bottle", key, spec, {});
          expect(b.tokens === undefined || Number.isSafeInteger(b.tokens)).toBe(true);
          expect(b.provider).toMatch(/^[A-Za-z0-9][\w.-]*$/);
        } catch (error) {
          expect((error as { code?: string }).code).toBe("E_USAGE");
        }
      }),
    );
  });
});
