import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openConnection } from "../src/connection.ts";
import { openStore } from "../src/index.ts";
import { lines, spawnTs } from "./workers/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "budget-store-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Start a writer, let it commit at least `minCommits` settles, SIGKILL it mid-loop. */
async function killMidWrite(
  db: string,
  agent: string,
  minCommits: number,
): Promise<{ count: number; tokens: number }> {
  const child = spawnTs("./crash-writer.ts", [db, agent], "ignore");
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  // Every line the writer printed before it died is in the pipe: a line is written only after its
  // settle committed, so the last complete line is a lower bound on what is in the database, and
  // at most one more settle (committed, not yet printed) can be there.
  let acked = { count: 0, tokens: 0 };
  let killed = false;
  const closed = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_c, sig) => resolve(sig)),
  );
  // Watchdog (a hang guard, not a time limit): a writer that prints nothing for 60 s is stuck and
  // fails the test with a diagnosis. It restarts on every line, so a slow machine only waits.
  let watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
  lines(child, (line) => {
    clearTimeout(watchdog);
    if (!killed) watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const [c, t] = line.split(" ").map(Number);
    acked = { count: c ?? 0, tokens: t ?? 0 };
    if (!killed && acked.count >= minCommits) {
      killed = true;
      child.kill("SIGKILL");
    }
  });
  const signal = await closed;
  clearTimeout(watchdog);
  if (!killed) {
    throw new Error(
      `writer stopped after ${acked.count} of ${minCommits} commits (${signal}): ${stderr}`,
    );
  }
  expect(signal).toBe("SIGKILL");
  return acked;
}

describe("crash safety", () => {
  it("SIGKILL in the middle of writes leaves a sound database whose totals match its events", async () => {
    const db = join(dir, "crash.db");
    let ackedCount = 0;
    let ackedTokens = 0;
    for (const [round, minCommits] of [300, 700, 1500].entries()) {
      const acked = await killMidWrite(db, `agent-${round}`, minCommits);
      ackedCount += acked.count;
      ackedTokens += acked.tokens;

      const raw = openConnection(db);
      try {
        expect(raw.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
        const settled = raw
          .prepare(
            "SELECT count(*) AS n, coalesce(sum(tokens),0) AS t FROM usage_events WHERE usage_missing = 0",
          )
          .get() as { n: number; t: number };
        // Everything acknowledged is there; at most the settle in flight per round beyond that.
        expect(settled.n).toBeGreaterThanOrEqual(ackedCount);
        expect(settled.n).toBeLessThanOrEqual(ackedCount + round + 1);
        expect(settled.t).toBeGreaterThanOrEqual(ackedTokens);
        expect(settled.t).toBeLessThanOrEqual(ackedTokens + (round + 1) * 97);
        // The reservation each earlier writer held when killed was reclaimed (charged its
        // estimate of 50) when the store was next opened, at the end of that round.
        const reclaimed = raw
          .prepare(
            "SELECT count(*) AS n, coalesce(sum(tokens),0) AS t FROM usage_events WHERE usage_missing = 1",
          )
          .get() as { n: number; t: number };
        expect(reclaimed.n).toBeLessThanOrEqual(round);
        expect(reclaimed.t).toBe(reclaimed.n * 50);
        const events = { n: settled.n + reclaimed.n, t: settled.t + reclaimed.t };
        // Counters written in the same transactions agree with the events.
        for (const [scope, key] of [
          ["global", "*"],
          ["bottle", "crashy"],
          ["bottle", "fleet"],
        ]) {
          const b = raw
            .prepare(
              "SELECT coalesce(sum(tokens),0) AS t FROM usage_buckets WHERE scope = ? AND key = ?",
            )
            .get(scope, key) as { t: number };
          expect(b.t, `${scope} ${key}`).toBe(events.t);
        }
        const agents = raw
          .prepare("SELECT coalesce(sum(tokens),0) AS t FROM usage_buckets WHERE scope = 'agent'")
          .get() as {
          t: number;
        };
        expect(agents.t).toBe(events.t);
      } finally {
        raw.close();
      }
      // And the store opens and reports the same totals.
      const store = await openStore(`sqlite:${db}`);
      try {
        const { totals } = await store.usage();
        const rem = await store.remaining({
          bottle: "crashy",
          parents: ["fleet"],
          agent: "a",
          provider: "p",
        });
        expect(rem).toBeUndefined();
        await store.defineBudget({ scope: "global", provider: "p", tokens: 10_000_000 });
        const after = await store.remaining({ bottle: "crashy", agent: "a", provider: "p" });
        expect(after?.used).toBe(totals.tokens);
        await store.removeBudgets({});
      } finally {
        await store.close();
      }
    }
  }, 600_000); // a hang guard only: three writers of up to 1,500 commits on a busy machine
});
