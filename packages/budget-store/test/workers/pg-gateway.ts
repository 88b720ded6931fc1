/**
 * A stand-in for one gateway on its own host, against a shared store.
 * argv: <store url> <mode> [estimate]
 *   run:   after "go" on stdin, 16 concurrent call loops on bottle "shared": reserve, wait a few
 *          ms (the "stream"), settle with a usage that can exceed the estimate by up to 40. On
 *          "insufficient" a loop lowers its estimate to what is left (as the gateway clamps
 *          max tokens) or waits for room; it stops at "cut-off" or "exhausted".
 *          Prints {"owner","settled","tokens","maxOver","refusals"}.
 *   hold:  takes 16 reservations and prints {"owner","ids"}, then waits to be killed.
 *   watch: calls reclaim() every 100 ms and prints each non-empty result as a JSON line.
 */
import { openStore } from "../../src/index.ts";

const [url, mode, estimateArg = "500"] = process.argv.slice(2);
const estimate = Number(estimateArg);
// The watcher reclaims explicitly (and prints what it got), so its own lease renewal, which
// would reclaim the same reservations silently, is made rare.
const store = await openStore(url, { leaseMs: mode === "watch" ? 3_600_000 : 60_000 });
const subject = { bottle: "shared", parents: ["fleet"], agent: "coder", provider: "anthropic" };
const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (mode === "hold") {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const r = await store.reserve({ ...subject, estimateTokens: estimate });
      if (!r.ok) throw new Error(`refused: ${r.reason}`);
      ids.push(r.id);
    }),
  );
  out({ owner: store.owner, ids });
  setInterval(() => {}, 1 << 30);
} else if (mode === "watch") {
  out({ owner: store.owner, ready: true });
  for (;;) {
    const r = await store.reclaim();
    if (r.reservations.length > 0)
      out({ reclaimed: r.reservations.map((x) => [x.id, x.owner, x.cause, x.chargedTokens]) });
    await sleep(100);
  }
} else {
  out({ ready: true });
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  let settled = 0;
  let tokens = 0;
  let maxOver = 0;
  const refusals: Record<string, number> = {};
  let n = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      let want = estimate;
      for (;;) {
        const r = await store.reserve({ ...subject, estimateTokens: want });
        if (!r.ok) {
          refusals[r.reason] = (refusals[r.reason] ?? 0) + 1;
          if (r.reason !== "insufficient") return;
          // As the gateway does: lower the call's cap to what is left, or wait for room.
          if (r.remaining > 0) want = r.remaining;
          else await sleep(2);
          continue;
        }
        await sleep(1 + (n++ % 7));
        // Usage between 60% of the estimate and the estimate plus 40 (an output cap overrun).
        const used = Math.floor(want * 0.6) + ((n * 37) % (Math.floor(want * 0.4) + 41));
        maxOver = Math.max(maxOver, used - want);
        want = estimate;
        await store.settle(r.id, { inputTokens: used });
        settled++;
        tokens += used;
      }
    }),
  );
  out({ owner: store.owner, settled, tokens, maxOver, refusals });
  await store.close();
  process.exit(0);
}
