/**
 * The proxy in its own process for the bench, as in production (the gateway process serves it):
 * the client and the sink then do not share its event loop. Reads one JSON config line on stdin,
 * answers `{ socketPath }`, then answers each "mem" line with its own memory and open tunnels and
 * each "cpu" line with its CPU time so far.
 */
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createProxyHost } from "../src/index.ts";

const lines = createInterface({ input: process.stdin });
let host: ReturnType<typeof createProxyHost> | undefined;
const others: ReturnType<typeof createProxyHost>[] = [];
const send = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
for await (const line of lines) {
  if (!host) {
    const cfg = JSON.parse(line) as {
      home: string;
      sinkPort: number;
      tlsPort: number;
      upstreamCa: string;
    };
    const resolve = () => ({ host: "127.0.0.1", port: cfg.sinkPort });
    const routes = [{ host: "sink.bench.test" }];
    // the default (native relay after 4 MiB; also intercepts api.bench.test for the cutoff
    // figure), the JS relay only, and the native relay from the first byte (hand-over cost)
    host = createProxyHost({
      home: cfg.home,
      resolve: (h) =>
        h === "api.bench.test"
          ? { host: "127.0.0.1", port: cfg.tlsPort }
          : { host: "127.0.0.1", port: cfg.sinkPort },
      upstreamCa: cfg.upstreamCa,
      // (d) holds BENCH_TUNNELS (1,000) idle tunnels at once: measure them, not the cap
      maxConnectionsPerSession: 1 << 16,
    });
    const jsHost = createProxyHost({ home: cfg.home, resolve, nativeRelay: false });
    const nowHost = createProxyHost({ home: cfg.home, resolve, nativeRelay: { afterBytes: 0 } });
    others.push(jsHost, nowHost);
    const s = await host.register({
      bottle: "bench",
      routes: [
        ...routes,
        { host: "api.bench.test", matches: [{ paths: [{ type: "prefix", value: "/" }] }] },
      ],
    });
    const js = await jsHost.register({ bottle: "bench-js", routes });
    const now = await nowHost.register({ bottle: "bench-now", routes });
    // the floor: the least a user-space relay can do (no CONNECT parsing, no tracking)
    const relayPath = join(cfg.home, "relay.sock");
    const relay = createServer((c) => {
      const u = connect(cfg.sinkPort, "127.0.0.1");
      c.pipe(u);
      u.pipe(c);
      c.on("error", () => u.destroy());
      u.on("error", () => c.destroy());
    });
    await new Promise<void>((r) => relay.listen(relayPath, () => r()));
    send({
      socketPath: s.proxySocketPath,
      jsSocketPath: js.proxySocketPath,
      nowSocketPath: now.proxySocketPath,
      relayPath,
      caPem: (await host.ca("bench")).certPem,
    });
    continue;
  }
  if (line === "cpu") {
    // CPU time this process has used so far (user + system, microseconds): the bench takes the
    // difference around one upload, a figure the shared machine's load barely moves
    const c = process.cpuUsage();
    send({ user: c.user, system: c.system });
  } else if (line === "mem") {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    send({
      rss: m.rss,
      heap: m.heapUsed + m.external + m.arrayBuffers,
      openTunnels: host.metricsNow().openTunnels,
      nativeRelayTunnels: host.metricsNow().nativeRelayTunnels,
    });
  } else if (line === "cutoff") {
    // the cutoff figure: closes every connection of the session; answers with the CPU it took
    const a = process.cpuUsage();
    await host.cutoff({ bottle: "bench" });
    const c = process.cpuUsage(a);
    send({
      cpuMs: (c.user + c.system) / 1000,
      nativeRelayTunnels: host.metricsNow().nativeRelayTunnels,
    });
  } else if (line === "restore") {
    await host.restore({ bottle: "bench" });
    send({ ok: true });
  } else if (line === "exit") {
    await host.close();
    for (const h of others) await h.close();
    process.exit(0);
  }
}
// stdin closed: the parent is gone
process.exit(0);
