/**
 * Opens the store at argv[0], takes argv[1] reservations of argv[2] tokens for bottle argv[3],
 * prints `{"owner":…,"ids":[…]}` and then waits (holding them) until it is killed.
 */
import { openStore } from "../../src/index.ts";

const [url, n = "1", estimate = "100", bottle = "web"] = process.argv.slice(2);
const store = await openStore(url, { leaseMs: 60_000 });
const ids: string[] = [];
for (let i = 0; i < Number(n); i++) {
  const r = await store.reserve({
    bottle,
    agent: "holder",
    provider: "anthropic",
    estimateTokens: Number(estimate),
  });
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  ids.push(r.id);
}
process.stdout.write(`${JSON.stringify({ owner: store.owner, ids })}\n`);
setInterval(() => {}, 1 << 30);
