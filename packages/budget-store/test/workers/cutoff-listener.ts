/**
 * A second process listening for cutoffs: argv <store URL>. Prints {"ready":true} once its
 * subscription is active, then one JSON line per cutoff event; exits when stdin closes.
 */
import { openStore } from "../../src/index.ts";

const [url = ""] = process.argv.slice(2);
const store = await openStore(url, { cutoffPollMs: 50 });
const sub = store.onCutoff((e) => process.stdout.write(`${JSON.stringify({ event: e })}\n`));
await sub.ready;
process.stdout.write(`${JSON.stringify({ ready: true, owner: store.owner })}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  sub.close();
  void store.close().then(() => process.exit(0));
});
