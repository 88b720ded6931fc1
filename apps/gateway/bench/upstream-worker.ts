// Bench child: the fake upstream in its own process, so it does not share an event loop with
// the gateway or the load generator.
import { createFakeUpstream } from "@bottlekit/test-utils";

const up = await createFakeUpstream({
  requireKey: process.env["BENCH_UPSTREAM_KEY"] ?? "",
  record: false,
  defaultReply: {
    text: "The quick brown fox jumps over the lazy dog.",
    usage: { input: 12, output: 10 },
  },
});
process.send?.({ url: up.url });
process.on("message", async (m) => {
  if (m === "cpu") process.send?.({ cpu: process.cpuUsage() });
  if (m === "stop") {
    await up.close();
    process.exit(0);
  }
});
