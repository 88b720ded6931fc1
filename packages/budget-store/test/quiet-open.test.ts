/**
 * A store that meters nothing writes nothing: `bottle run` opens the home's store on every run,
 * checks the bottle's cutoff, replaces the manifest budgets (nearly always with the same ones) and
 * closes it. Then the database file is left exactly as it was (no WAL to create, sync and
 * checkpoint), and the owner registration waits for the first reservation.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-quiet-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const who = { bottle: "web", agent: "coder", provider: "anthropic" };
const digest = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("a store that meters nothing", () => {
  it("leaves the database file as it found it, and registers no owner", async () => {
    const file = join(dir, "quiet.db");
    const manifest = [{ scope: "bottle" as const, key: "web", provider: "anthropic", tokens: 500 }];
    const setup = await openStore(`sqlite:${file}`);
    await setup.replaceBudgets("manifest", manifest);
    await setup.close();
    const before = digest(file);

    const store = await openStore(`sqlite:${file}`);
    const other = await openStore(`sqlite:${file}`);
    expect(await store.cutoffState("web")).toBeUndefined();
    const [kept] = await store.replaceBudgets("manifest", manifest);
    expect(kept).toMatchObject({ key: "web", tokens: 500 });
    expect((await other.listOwners()).map((o) => o.id)).not.toContain(store.owner);
    await other.close();
    await store.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(digest(file)).toBe(before);
  });

  it("registers its owner with its first reservation, in the same transaction", async () => {
    const file = `sqlite:${join(dir, "first.db")}`;
    const store = await openStore(file);
    try {
      expect(await store.listOwners()).toEqual([]);
      expect((await store.reserve({ ...who, estimateTokens: 10 })).ok).toBe(true);
      expect(await store.listOwners()).toEqual([
        expect.objectContaining({ id: store.owner, reservations: 1 }),
      ]);
    } finally {
      await store.close();
    }
  });

  it("replacing budgets with the same ones keeps them (and their time); a change replaces them", async () => {
    let now = Date.parse("2026-03-01T10:00:00Z");
    const store = await openStore(`sqlite:${join(dir, "replace.db")}`, { clock: () => now });
    try {
      const a = { scope: "bottle" as const, key: "web", provider: "anthropic", tokens: 500 };
      const b = { scope: "agent" as const, key: "coder", provider: "openai", usd: 2 };
      const first = await store.replaceBudgets("manifest", [a, b]);
      now += 1_000;
      const same = await store.replaceBudgets("manifest", [b, a]);
      expect(same.map((x) => x.updatedAt)).toEqual([first[1]?.updatedAt, first[0]?.updatedAt]);
      now += 1_000;
      const changed = await store.replaceBudgets("manifest", [{ ...a, tokens: 600 }]);
      expect(changed).toEqual([expect.objectContaining({ tokens: 600, updatedAt: now })]);
      expect((await store.listBudgets({ source: "manifest" })).map((x) => x.key)).toEqual(["web"]);
      expect(await store.replaceBudgets("manifest", [])).toEqual([]);
      expect(await store.listBudgets({ source: "manifest" })).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
