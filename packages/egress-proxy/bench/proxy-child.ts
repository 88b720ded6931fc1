/**
 * The proxy in its own process for the bench, as in production (the gateway process serves it):
 * the client and the sink then do not share its event loop. Reads one JSON config line on stdin,
 * answers `{ socketPath }`, then answers each "mem" line with its own memory and open tunnels.
 */
import { createInterface } from "node:readline";
import { createProxyHost } from "../src/index.ts";

const lines = createInterface({ input: process.stdin });
let host: ReturnType<typeof createProxyHost> | undefined;
const send = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
for await (const line of lines) {
  if (!host) {
    const cfg = JSON.parse(line) as { home: string; sinkPort: number };
    host = createProxyHost({
      home: cfg.home,
      resolve: () => ({ host: "127.0.0.1", port: cfg.sinkPort }),
    });
    const s = await host.register({ bottle: "bench", routes: [{ host: "sink.bench.test" }] });
    send({ socketPath: s.proxySocketPath });
    continue;
  }
  if (line === "mem") {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    send({
      rss: m.rss,
      heap: m.heapUsed + m.external + m.arrayBuffers,
      openTunnels: host.metricsNow().openTunnels,
    });
  } else if (line === "exit") {
    await host.close();
    process.exit(0);
  }
}
