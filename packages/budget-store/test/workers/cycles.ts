/**
 * A reserve/settle worker run in its own process by the concurrency test and the bench.
 *
 * argv: <db path or store URL> <worker index> <cycles> <estimate> [in flight]
 * It prints "ready" once the store is open, waits for a line on stdin (so that every worker starts
 * at once), runs the cycles, and prints one JSON line with what it did.
 * Half of the cycles use provider "limited" (the test gives it a budget), half "open".
 */
import { openStore } from "../../src/index.ts";

const [dbPath = "", indexArg, cyclesArg, estimateArg, inFlightArg] = process.argv.slice(2);
const index = Number(indexArg);
const cycles = Number(cyclesArg);
const estimate = Number(estimateArg ?? "10");

const inFlight = Number(inFlightArg ?? "1");
const store = await openStore(
  /^(sqlite|postgres(ql)?):/.test(dbPath) ? dbPath : `sqlite:${dbPath}`,
);
process.stdout.write("ready\n");
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));

const settled: Record<string, number> = { limited: 0, open: 0 };
let refused = 0;
let maxOver = 0;
const errors: string[] = [];
const started = Date.now();
const cpu0 = process.cpuUsage();
let nextCycle = 0;
/** One call loop; `inFlight` of them share the cycles (a server with that many calls open). */
async function loop(): Promise<void> {
  for (let i = nextCycle++; i < cycles; i = nextCycle++) {
    const provider = i % 2 === 0 ? "limited" : "open";
    try {
      const r = await store.reserve({
        bottle: `bottle-${index % 2}`,
        parents: ["fleet"],
        agent: `agent-${index}`,
        provider,
        estimateTokens: estimate,
      });
      if (!r.ok) {
        refused++;
        continue;
      }
      // Actual usage varies around the estimate: estimate-5 .. estimate+5.
      const actual = estimate - 5 + ((i * 7 + index * 3) % 11);
      await store.settle(r.id, { inputTokens: actual - 2, outputTokens: 2 });
      settled[provider] = (settled[provider] ?? 0) + actual;
      maxOver = Math.max(maxOver, actual - estimate);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      errors.push(`${e.code ?? "?"}: ${e.message ?? String(err)}`);
    }
  }
}
await Promise.all(Array.from({ length: inFlight }, () => loop()));
const finished = Date.now();
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
await store.close();
process.stdout.write(
  `${JSON.stringify({ index, settled, refused, maxOver, errors, started, finished, cpuMs })}\n`,
);
process.stdin.destroy();
