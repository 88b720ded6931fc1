import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { LATEST_SCHEMA_VERSION } from "./migrations.ts";
import { openStore } from "./open.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-sqlite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("SQLite backend", () => {
  it("uses WAL, busy_timeout and foreign keys, and migrates once however often it is opened", async () => {
    const db = join(dir, "pragmas.db");
    const stores = await Promise.all([
      openStore(`sqlite:${db}`),
      openStore(`sqlite:${db}`, { busyTimeoutMs: 1234 }),
    ]);
    await Promise.all(stores.map((s) => s.close()));
    await (await openStore(`sqlite:${db}`)).close();
    const raw = new Database(db);
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      const versions = raw.prepare("SELECT version FROM schema_version").all();
      expect(versions).toEqual([{ version: LATEST_SCHEMA_VERSION }]);
    } finally {
      raw.close();
    }
  });

  it("refuses a database written by a newer schema", async () => {
    const db = join(dir, "newer.db");
    await (await openStore(`sqlite:${db}`)).close();
    const raw = new Database(db);
    raw
      .prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)")
      .run(LATEST_SCHEMA_VERSION + 1);
    raw.close();
    await expect(openStore(`sqlite:${db}`)).rejects.toMatchObject({ code: "E_SCHEMA_VERSION" });
  });

  it("reports a file that is not a database as E_STORE_OPEN", async () => {
    const db = join(dir, "garbage.db");
    writeFileSync(db, "this is not sqlite ".repeat(100));
    await expect(openStore(`sqlite:${db}`)).rejects.toMatchObject({ code: "E_STORE_OPEN" });
  });

  it("stores only a hash of gateway keys", async () => {
    const db = join(dir, "keys.db");
    const store = await openStore(`sqlite:${db}`);
    const { key } = await store.createGatewayKey({ bottle: "b", agent: "a" });
    await store.close();
    const raw = new Database(db);
    raw.pragma("wal_checkpoint(TRUNCATE)");
    raw.close();
    const bytes = readFileSync(db).toString("latin1");
    expect(bytes).not.toContain(key);
    expect(bytes).not.toContain(key.slice(3, 30));
  });

  it("throws E_CLOSED after close", async () => {
    const store = await openStore("sqlite::memory:");
    await store.close();
    await expect(store.usage()).rejects.toMatchObject({ code: "E_CLOSED" });
  });

  it("reserve+settle cost does not grow with the size of the ledger", async () => {
    const store = await openStore(`sqlite:${join(dir, "growth.db")}`);
    await store.defineBudget({ scope: "global", provider: "p", tokens: 1e15, window: "monthly" });
    await store.defineBudget({ scope: "bottle", key: "team", provider: "p", tokens: 1e15 });
    const pairs = async (n: number) => {
      const t = performance.now();
      for (let i = 0; i < n; i++) {
        const r = await store.reserve({
          bottle: "b",
          parents: ["team"],
          agent: "a",
          provider: "p",
          estimateTokens: 5,
        });
        if (!r.ok) throw new Error(r.reason);
        await store.settle(r.id, { inputTokens: 5 });
      }
      return performance.now() - t;
    };
    // The fastest of several batches is robust against other processes stealing the CPU.
    const fastest = async () => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) best = Math.min(best, await pairs(100));
      return best;
    };
    await pairs(200); // warm up
    const early = await fastest();
    await pairs(5_000);
    const late = await fastest();
    await store.close();
    // Cost linear in the ledger would make `late` many times `early` (the ledger grows ~7x).
    expect(late).toBeLessThan(early * 3);
  });

  it("waits out another process's write lock instead of failing with SQLITE_BUSY", async () => {
    const db = join(dir, "locked.db");
    const store = await openStore(`sqlite:${db}`, { busyTimeoutMs: 5000 });
    // A plain Node process takes the write lock, holds it for 300 ms, then commits.
    const holder = spawn(
      process.execPath,
      [
        "-e",
        `const D = require("better-sqlite3"); const d = new D(process.argv[1]);
         d.exec("BEGIN IMMEDIATE"); process.stdout.write("locked\\n");
         setTimeout(() => { d.exec("COMMIT"); d.close(); }, 300);`,
        db,
      ],
      { cwd: process.cwd(), stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => holder.stdout?.once("data", () => resolve()));
    try {
      const t = performance.now();
      const r = await store.reserve({ bottle: "b", agent: "a", provider: "p", estimateTokens: 1 });
      expect(r.ok).toBe(true);
      expect(performance.now() - t).toBeGreaterThan(100);
    } finally {
      await store.close();
      await new Promise((resolve) => holder.once("exit", resolve));
    }
  });

  it("turns a lock held past the busy budget into E_STORE_BUSY, then recovers", async () => {
    const db = join(dir, "stuck.db");
    const store = await openStore(`sqlite:${db}`, { busyTimeoutMs: 25 });
    const raw = new Database(db);
    try {
      raw.exec("BEGIN IMMEDIATE");
      await expect(
        store.reserve({ bottle: "b", agent: "a", provider: "p", estimateTokens: 1 }),
      ).rejects.toMatchObject({ code: "E_STORE_BUSY" });
      raw.exec("COMMIT");
      expect(
        (await store.reserve({ bottle: "b", agent: "a", provider: "p", estimateTokens: 1 })).ok,
      ).toBe(true);
    } finally {
      raw.close();
      await store.close();
    }
  });
});
