import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection } from "../src/connection.ts";
import { openStore } from "../src/index.ts";
import { LATEST_SCHEMA_VERSION, migrate } from "../src/migrations.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-migration-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = Date.parse("2026-02-10T08:00:00Z");

/**
 * A database as the previous release (schema v2) left it, written with that release's SQL: the
 * shipped migrations are never edited, so running them up to v2 reproduces it exactly.
 */
function previousRelease(file: string): void {
  const conn = openConnection(file);
  try {
    expect(migrate(conn, T, 2)).toBe(2);
    const budget = conn.prepare(
      "INSERT INTO budgets (scope, key, provider, source, tokens, usd, win, policy, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    budget.run("global", "*", "anthropic", "settings", 1_000_000, null, "monthly", null, T);
    budget.run("bottle", "web", "anthropic", "manifest", 50_000, 2.5, "daily", "freeze", T);
    // What the gateway wrote for its config budgets: source "flag".
    budget.run("bottle", "web", "anthropic", "flag", 80_000, null, "none", null, T);
    budget.run("agent", "coder", "openai", "flag", 9_000, null, "7d", "kill", T);
    conn
      .prepare(
        `INSERT INTO usage_events (at, request_id, reservation_id, bottle, parents, agent, provider, model,
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, tokens, cost_usd, usage_missing)
         VALUES (?, 'q1', 'r_old', 'web', '[]', 'coder', 'anthropic', 'm', 600, 400, 0, 0, 0, 1000, 0.01, 0)`,
      )
      .run(T);
    conn
      .prepare(
        "INSERT INTO usage_buckets (scope, key, provider, day, tokens, usd) VALUES (?, ?, 'anthropic', ?, 1000, 0.01)",
      )
      .run("bottle", "web", Math.floor(T / 86_400_000));
    conn
      .prepare(
        "INSERT INTO reservations (id, created_at, expires_at, request_id, bottle, parents, agent, provider, tokens, usd) VALUES ('r_live', ?, ?, NULL, 'web', '[]', 'coder', 'anthropic', 300, 0)",
      )
      .run(T, T + 600_000);
    conn
      .prepare(
        "INSERT INTO enforcement_actions (at, bottle, action, scope, scope_key, scope_provider, by, reason) VALUES (?, 'web', 'cutoff', NULL, NULL, NULL, 'ops', 'test')",
      )
      .run(T);
    conn
      .prepare(
        "INSERT INTO gateway_keys (id, hash, bottle, agent, label, created_at, revoked_at) VALUES ('gk_1', 'abc', 'web', 'coder', NULL, ?, NULL)",
      )
      .run(T);
  } finally {
    conn.close();
  }
}

describe("schema migrations from the previous release", () => {
  it("v2 -> latest keeps every row; gateway-config budgets stored as flag become config", async () => {
    const file = join(dir, "v2.db");
    previousRelease(file);
    const store = await openStore(`sqlite:${file}`, { clock: () => T + 1_000 });
    try {
      const budgets = await store.listBudgets();
      expect(budgets.map((b) => [b.source, b.scope, b.key, b.provider, b.tokens])).toEqual([
        ["config", "bottle", "web", "anthropic", 80_000],
        ["manifest", "bottle", "web", "anthropic", 50_000],
        ["settings", "global", "*", "anthropic", 1_000_000],
        ["config", "agent", "coder", "openai", 9_000],
      ]);
      expect(budgets.find((b) => b.source === "manifest")).toMatchObject({
        usd: 2.5,
        window: "daily",
        policy: "freeze",
        updatedAt: T,
      });
      expect(budgets.find((b) => b.provider === "openai")).toMatchObject({
        window: "7d",
        policy: "kill",
      });
      // The former flag now ranks below the manifest budget of the same scope (config <
      // manifest); the usage and the live hold still count.
      expect(
        await store.remaining({ bottle: "web", agent: "coder", provider: "anthropic" }),
      ).toMatchObject({
        scope: "bottle",
        limit: 50_000,
        used: 1_000,
        reserved: 300,
      });
      expect((await store.usage()).totals).toMatchObject({ events: 1, tokens: 1_000 });
      expect(await store.actions()).toHaveLength(1);
      expect(await store.listGatewayKeys()).toEqual([
        expect.objectContaining({ id: "gk_1", bottle: "web" }),
      ]);
      // The gateway's next start replaces its config budgets as a whole.
      await store.replaceBudgets("config", [
        { scope: "bottle", key: "web", provider: "anthropic", tokens: 70_000 },
      ]);
      expect((await store.listBudgets({ source: "config" })).map((b) => b.tokens)).toEqual([
        70_000,
      ]);
      // The pre-v3 reservation has no owner: it is not reclaimed, it expires by its TTL.
      expect(await store.reclaim()).toEqual({ owners: [], reservations: [] });
    } finally {
      await store.close();
    }
    const raw = openConnection(file);
    try {
      expect(
        (raw.prepare("SELECT max(version) AS v FROM schema_version").get() as { v: number }).v,
      ).toBe(LATEST_SCHEMA_VERSION);
      expect(raw.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).toEqual({
        integrity_check: "ok",
      });
    } finally {
      raw.close();
    }
  });

  it("migrating twice, or from several processes' opens, applies each version once", async () => {
    const file = join(dir, "twice.db");
    previousRelease(file);
    const [a, b] = await Promise.all([openStore(`sqlite:${file}`), openStore(`sqlite:${file}`)]);
    await a.close();
    await b.close();
    const again = await openStore(`sqlite:${file}`);
    expect(await again.listBudgets()).toHaveLength(4);
    await again.close();
    const raw = openConnection(file);
    try {
      expect(raw.prepare("SELECT version FROM schema_version ORDER BY version").all()).toEqual(
        Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
      );
    } finally {
      raw.close();
    }
  });
});
