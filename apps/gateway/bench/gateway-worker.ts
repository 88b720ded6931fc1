// Bench child: the real gateway (registry, DLP, metering, budgets, SQLite store) in its own process.
import { startGateway } from "../src/compose.ts";

const upstream = process.env["BENCH_UPSTREAM_URL"] as string;
const home = process.env["BOTTLEKIT_HOME"] as string;
const gw = await startGateway({
  config: {
    model_providers: [
      { model: "openai/*", base_url: `${upstream}/v1`, access_key: "$OPENAI_API_KEY" },
      { model: "anthropic/*", base_url: `${upstream}/v1`, access_key: "$ANTHROPIC_API_KEY" },
    ],
    // A budget large enough never to trip, so every call does a real reserve and settle.
    budgets: [{ scope: "bottle", key: "default", provider: "openai", tokens: 1_000_000_000_000 }],
    dlp: { outbound: { on_match: "block" }, inbound: { on_match: "warn" } },
  },
  listen: "127.0.0.1:0",
  store: `sqlite:${home}/bottlekit.db`,
  env: process.env,
  // BENCH_STORE_WORKER=1 moves the store to a worker thread (for comparison).
  storeInWorker: process.env["BENCH_STORE_WORKER"] === "1",
  ...(process.env["BENCH_GROUP_MS"] !== undefined
    ? { storeGroupCommitMs: Number(process.env["BENCH_GROUP_MS"]) }
    : {}),
});
process.send?.({ url: gw.url });
process.on("message", async (m) => {
  if (m === "cpu")
    process.send?.({ cpu: process.cpuUsage(), requests: gw.gateway.metrics.requests });
  if (m === "cpu") return;
  if (m === "stop") {
    await gw.close(1_000);
    process.exit(0);
  }
});
