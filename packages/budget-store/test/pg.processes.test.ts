/**
 * Two OS processes stand in for two gateways on two hosts (each with its own BOTTLEKIT_HOME),
 * against one Postgres and one budget.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../src/index.ts";
import { startTestPostgres, type TestPostgres } from "./pg.ts";
import { lines } from "./workers/spawn.ts";

let pg: TestPostgres;
const homes = mkdtempSync(join(tmpdir(), "bk-homes-"));
const children: ChildProcess[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await pg?.stop();
  rmSync(homes, { recursive: true, force: true });
}, 300_000); // hang guard

let n = 0;
function gateway(url: string, mode: string, estimate: number) {
  const home = join(homes, `h${n++}`);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@bottlekit/source",
      fileURLToPath(new URL("./workers/pg-gateway.ts", import.meta.url)),
      url,
      mode,
      String(estimate),
    ],
    {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, BOTTLEKIT_HOME: home },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  children.push(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  lines(child, (line) => {
    messages.push(JSON.parse(line) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const next = (pred: (m: Record<string, unknown>) => boolean, what: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${what} from ${mode}: ${stderr}`)),
        60_000,
      );
      const check = () => {
        const m = messages.find(pred);
        if (m !== undefined) {
          clearTimeout(timer);
          resolve(m);
        } else waiters.push(check);
      };
      check();
      child.on("close", (code) => {
        clearTimeout(timer);
        const m = messages.find(pred);
        if (m !== undefined) resolve(m);
        else reject(new Error(`${mode} exited (${code}) before ${what}: ${stderr}`));
      });
    });
  return { child, next, messages };
}

describe("two gateway processes on one Postgres", () => {
  it("16 concurrent calls each against one budget: total within the bound, both cut off", async () => {
    const url = await pg.newDatabase();
    const LIMIT = 40_000;
    const ESTIMATE = 500;
    const setup = await openStore(url, { reclaimOnOpen: false });
    try {
      await setup.defineBudget({
        scope: "bottle",
        key: "fleet",
        provider: "anthropic",
        tokens: LIMIT,
      });
      const a = gateway(url, "run", ESTIMATE);
      const b = gateway(url, "run", ESTIMATE);
      await Promise.all([
        a.next((m) => m["ready"] === true, "ready"),
        b.next((m) => m["ready"] === true, "ready"),
      ]);
      a.child.stdin?.write("go\n");
      b.child.stdin?.write("go\n");
      const [ra, rb] = await Promise.all([
        a.next((m) => "settled" in m, "result"),
        b.next((m) => "settled" in m, "result"),
      ]);
      const total = (ra["tokens"] as number) + (rb["tokens"] as number);
      const maxOver = Math.max(ra["maxOver"] as number, rb["maxOver"] as number);
      const { totals } = await setup.usage();
      expect(totals.tokens).toBe(total);
      expect(totals.events).toBe((ra["settled"] as number) + (rb["settled"] as number));
      // Exact up to what the calls in flight at the crossing used beyond their estimates.
      expect(total).toBeLessThanOrEqual(LIMIT + 32 * maxOver);
      // The budget was spent (the crossing settle cut the bottle off) ...
      expect(total).toBeGreaterThanOrEqual(LIMIT);
      expect(await setup.isCutOff("shared")).toBe(true);
      expect((await setup.actions()).map((x) => [x.action, x.by])).toEqual([["cutoff", "budget"]]);
      // ... and each process had calls granted, then every one of its 16 loops ended refused
      // as cut off.
      for (const r of [ra, rb]) {
        expect(r["settled"] as number).toBeGreaterThan(0);
        const refusals = r["refusals"] as Record<string, number>;
        expect(refusals["cut-off"]).toBe(16);
        expect(refusals["exhausted"] ?? 0).toBe(0);
      }
      expect(
        (
          await setup.remaining({
            bottle: "shared",
            parents: ["fleet"],
            agent: "coder",
            provider: "anthropic",
          })
        )?.reserved,
      ).toBe(0);
    } finally {
      await setup.close();
    }
  }, 120_000);

  it("SIGKILL of one gateway mid-flight: the other reclaims its reservations", async () => {
    const url = await pg.newDatabase();
    const observer = await openStore(url, { reclaimOnOpen: false, leaseMs: 3_600_000 });
    try {
      await observer.defineBudget({
        scope: "bottle",
        key: "fleet",
        provider: "anthropic",
        tokens: 100_000,
      });
      const watcher = gateway(url, "watch", 0);
      await watcher.next((m) => m["ready"] === true, "ready");
      const holder = gateway(url, "hold", 1_000);
      const held = await holder.next((m) => Array.isArray(m["ids"]), "held ids");
      expect(
        (
          await observer.remaining({
            bottle: "shared",
            parents: ["fleet"],
            agent: "coder",
            provider: "anthropic",
          })
        )?.reserved,
      ).toBe(16_000);
      holder.child.kill("SIGKILL");
      const reclaimed = new Set<string>();
      while (reclaimed.size < 16) {
        const m = await watcher.next(
          (x) =>
            Array.isArray(x["reclaimed"]) &&
            (x["reclaimed"] as unknown[][]).some((r) => !reclaimed.has(r[0] as string)),
          "reclaimed reservations",
        );
        for (const r of m["reclaimed"] as unknown[][]) {
          expect(r[1]).toBe(held["owner"]);
          expect(["process-gone", "lease-expired"]).toContain(r[2]);
          expect(r[3]).toBe(1_000);
          reclaimed.add(r[0] as string);
        }
      }
      expect([...reclaimed].sort()).toEqual([...(held["ids"] as string[])].sort());
      const rem = await observer.remaining({
        bottle: "shared",
        parents: ["fleet"],
        agent: "coder",
        provider: "anthropic",
      });
      expect(rem).toMatchObject({ used: 16_000, reserved: 0 });
      const events = await observer.events();
      expect(events).toHaveLength(16);
      expect(events.every((e) => e.usageMissing && e.tokens === 1_000)).toBe(true);
      expect((await observer.actions()).filter((x) => x.action === "reclaim")).toHaveLength(16);
      watcher.child.kill("SIGTERM");
    } finally {
      await observer.close();
    }
  }, 120_000);

  it("ten stores opening a fresh database at once migrate it once", async () => {
    const url = await pg.newDatabase();
    const stores = await Promise.all(
      Array.from({ length: 10 }, () => openStore(url, { poolSize: 2 })),
    );
    for (const s of stores) await s.close();
    const check = await openStore(url);
    try {
      expect(check.backend).toBe("postgres");
      expect((await check.listOwners()).length).toBeGreaterThanOrEqual(1);
    } finally {
      await check.close();
    }
  }, 300_000); // hang guard
});
