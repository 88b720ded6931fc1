/**
 * The long real-bash oracle campaign (issue 16): 200,000 generated scripts by default, every one
 * decided `allow` run by bash in a bubblewrap sandbox under strace (see test/oracle/). Prints
 * progress, the figures and every escape with its script; exits 1 on any escape.
 *
 *   pnpm --filter @bottlekit/execpolicy exec tsx --conditions=@bottlekit/source bench/oracle.ts [COUNT] [SEED]
 */
import { runOracle } from "../test/oracle/oracle.ts";

const count = Number(process.argv[2] ?? 200_000);
const seed = Number(process.argv[3] ?? 20_261_205);
const t0 = performance.now();
const stats = await runOracle({
  count,
  seed,
  onProgress: (done, s) =>
    console.log(
      `${done.toLocaleString("en")} generated, ${s.executed.toLocaleString("en")} run, ${s.execs.toLocaleString("en")} execve recorded, ${s.escapes.length} escapes, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    ),
});
const seconds = (performance.now() - t0) / 1000;
console.log(
  `oracle: ${stats.generated.toLocaleString("en")} scripts generated, ${stats.executed.toLocaleString("en")} allowed and run, ${stats.execs.toLocaleString("en")} execve recorded, ${stats.escapes.length} escapes, ${stats.problems.length} sandbox problems, ${seconds.toFixed(0)} s (${((stats.generated / seconds) | 0).toLocaleString("en")} scripts/s)`,
);
for (const p of stats.problems.slice(0, 20)) console.log(`problem: ${p}`);
for (const e of stats.escapes.slice(0, 50))
  console.log(`ESCAPE [${e.policy}] ${e.why}\n  script: ${JSON.stringify(e.script)}`);
process.exitCode = stats.escapes.length > 0 || stats.problems.length > 0 ? 1 : 0;
