/**
 * Cutoffs reach every store sharing the database: a second store in this process and a second
 * process, on a SQLite file and on Postgres. Waits have a deadline only as a hang guard.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CutoffEvent, type EnforcementAction, openStore } from "../src/index.ts";
import { describeWhere, startTestPostgres, type TestPostgres } from "./pg.ts";
import { lines, spawnTs } from "./workers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-cutoff-events-"));
let pg: TestPostgres;
const children: ChildProcess[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 300_000); // hang guard

// A hang guard only (nothing asserts on elapsed time); below the 120 s per-test guard.
const HANG_GUARD_MS = 90_000;

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + HANG_GUARD_MS;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A listener process: its events as they arrive. */
function listenerProcess(url: string) {
  const child = spawnTs("./cutoff-listener.ts", [url]);
  children.push(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  const events: CutoffEvent[] = [];
  let ready = false;
  lines(child, (line) => {
    const m = JSON.parse(line) as { ready?: boolean; event?: CutoffEvent };
    if (m.ready === true) ready = true;
    if (m.event !== undefined) events.push(m.event);
  });
  return {
    events,
    ready: () => until(() => ready, `the listener to start (${stderr})`),
    stop: () =>
      new Promise<void>((resolve) => {
        child.on("close", () => resolve());
        child.stdin?.end();
      }),
  };
}

const who = { bottle: "web", parents: ["team"], agent: "coder", provider: "anthropic" };

const backends: Array<[string, () => Promise<string>]> = [
  [
    "sqlite file",
    async () => `sqlite:${join(dir, `db-${Math.random().toString(36).slice(2)}.db`)}`,
  ],
  [`postgres (${describeWhere()})`, () => pg.newDatabase()],
];

for (const [name, newUrl] of backends) {
  describe(`cutoff events across stores (${name})`, () => {
    it("a second store and a second process hear a budget cutoff, a manual cutoff and a restore", async () => {
      const url = await newUrl();
      const a = await openStore(url, { cutoffPollMs: 50 });
      const b = await openStore(url, { cutoffPollMs: 50 });
      const other = listenerProcess(url);
      try {
        const inB: CutoffEvent[] = [];
        const sub = b.onCutoff((e) => inB.push(e));
        await sub.ready;
        await other.ready();
        await a.defineBudget({ scope: "bottle", key: "team", provider: "anthropic", tokens: 100 });
        const r = await a.reserve({ ...who, estimateTokens: 100 });
        if (!r.ok) throw new Error(`refused: ${r.reason}`);
        const settled = await a.settle(r.id, { inputTokens: 120 });
        expect(settled.crossed).toMatchObject({ scope: "parent", key: "team" });
        await a.cutOff("solo", { by: "ops", reason: "incident", policy: "kill" });
        expect(await a.restore("web", { by: "ops", reason: "raised" })).toBe(true);
        const expected = [
          ["web", "cutoff", "budget"],
          ["solo", "kill", "ops"],
          ["web", "restore", "ops"],
        ];
        const shape = (es: readonly EnforcementAction[]) =>
          es.map((e) => [e.bottle, e.action, e.by]);
        await until(() => inB.length >= 3, "three events in the second store");
        await until(() => other.events.length >= 3, "three events in the second process");
        const trail = await a.actions();
        expect(shape(trail)).toEqual(expected);
        expect(shape(inB)).toEqual(shape(trail));
        expect(shape(other.events)).toEqual(shape(trail));
        expect(other.events.map((e) => e.id)).toEqual(trail.map((e) => e.id));
        sub.close();
      } finally {
        await other.stop();
        await b.close();
        await a.close();
      }
    }, 120_000);
  });
}
