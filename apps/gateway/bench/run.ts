/**
 * Gateway overhead, measured against the same local upstream called directly, in the same run.
 * Three processes: fake upstream, gateway (DLP + metering + budgets on a SQLite store), and this
 * load generator. Prints:
 *  (a) latency added at concurrency 1, non-streaming: p50, p99;
 *  (b) time to first streamed byte added, p50;
 *  (c) requests/s at concurrency 64 (gateway and direct) and gateway CPU time per request;
 *  (d) a translated call (Anthropic Messages client → Chat-Completions-only model) against the
 *      same-API call, p50 and time to first streamed byte, interleaved in the same run.
 *
 * The gateway runs as it ships: its sources and the workspace libraries compiled by tsup (what
 * `pnpm build` makes of them), not through tsx. tsx compiles with esbuild's `keepNames`, which
 * wraps every named closure in a `__name()` call at run time; profiled at c=64 that was ~3% of
 * the gateway's CPU, a cost the built package does not have. BENCH_TSX=1 runs the sources
 * through tsx instead (for comparison); BENCH_STORE_WORKER=1 implies it (the worker's entry is a
 * separate file).
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { openStore } from "@bottlekit/budget-store";
import { build } from "tsup";
import { Pool } from "undici";

const KEY = "sk-proj-BENCHupstreamKEY0123456789abcdefABCDEF0123";
const here = fileURLToPath(new URL(".", import.meta.url));
const execArgv = ["--import", "tsx", "--conditions=@bottlekit/source"];
const N1 = Number(process.env["BENCH_N"] ?? 4000);
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 5);
// Calls per target before measuring. The first few thousand calls of a fresh process keep V8's
// optimizing compiler busy on a background thread, which on a 2-core machine takes the core the
// upstream needs: 500 warm-up calls left p99 at 3.2-3.6 ms; with the optimizer off (--no-opt)
// p99 fell to 1.7 ms while p50 doubled, which identified the cause. A gateway is a long-running
// process, so the steady state is what is measured.
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 10_000);

/**
 * Compiles bench/gateway-worker.ts with tsup into one ESM file under node_modules/.cache: the
 * gateway and the workspace libraries from their sources (as their own builds compile them:
 * esbuild, target node20, no keepNames); every other package stays external and is imported from
 * the path its importer would load it from.
 */
async function buildGatewayWorker(): Promise<string> {
  const outDir = join(here, "..", "node_modules", ".cache", "bottle-gateway-bench");
  await build({
    entry: { "gateway-worker": join(here, "gateway-worker.ts") },
    outDir,
    format: ["esm"],
    target: "node20",
    platform: "node",
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: true,
    silent: true,
    noExternal: [/^@bottlekit\//],
    esbuildOptions(o) {
      o.conditions = ["@bottlekit/source"];
    },
    esbuildPlugins: [
      {
        name: "external-at-resolved-path",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, async (a) => {
            if (a.path.startsWith("@bottlekit/") || a.path.startsWith("node:")) return undefined;
            if (a.pluginData === "resolving") return undefined;
            const r = await b.resolve(a.path, {
              kind: a.kind,
              importer: a.importer,
              resolveDir: a.resolveDir,
              pluginData: "resolving",
            });
            if (r.errors.length > 0 || r.external) return { path: a.path, external: true };
            return { path: r.path, external: true };
          });
        },
      },
    ],
  });
  return join(outDir, "gateway-worker.js");
}

function start(
  file: string,
  env: NodeJS.ProcessEnv,
  extraArgv: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const built = file.endsWith(".js");
  const child = fork(built ? file : join(here, file), [], {
    execArgv: [...(built ? [] : execArgv), ...extraArgv],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, url: (m as { url: string }).url }));
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

const body = JSON.stringify({
  model: "openai/gpt-4o-mini",
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Write one sentence about foxes and dogs, please." },
  ],
  max_tokens: 64,
});
const streamBody = JSON.stringify({ ...JSON.parse(body), stream: true });
// The same conversation in Anthropic's Messages API, for a model whose provider speaks Chat
// Completions only: the gateway translates the request, the response and the stream.
const messagesBody = JSON.stringify({
  model: "openai/gpt-4o-mini",
  system: "You are a helpful assistant.",
  messages: [{ role: "user", content: "Write one sentence about foxes and dogs, please." }],
  max_tokens: 64,
});
const messagesStreamBody = JSON.stringify({ ...JSON.parse(messagesBody), stream: true });

interface Target {
  name: string;
  pool: Pool;
  path: string;
  headers: Record<string, string>;
  /** Request bodies when not the chat ones. */
  payload?: string;
  streamPayload?: string;
}

async function once(t: Target, payload: string): Promise<void> {
  const r = await t.pool.request({
    path: t.path,
    method: "POST",
    headers: t.headers,
    body: payload,
  });
  if (r.statusCode !== 200)
    throw new Error(`${t.name}: HTTP ${r.statusCode}: ${await r.body.text()}`);
  await r.body.dump({ limit: Infinity });
}

/** Time to the first body byte of a streamed response. */
async function ttfb(t: Target): Promise<number> {
  const t0 = performance.now();
  const r = await t.pool.request({
    path: t.path,
    method: "POST",
    headers: t.headers,
    body: t.streamPayload ?? streamBody,
  });
  let first = 0;
  for await (const _ of r.body) {
    if (first === 0) first = performance.now() - t0;
  }
  return first;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function latencies(targets: Target[], n: number, fn: (t: Target) => Promise<number>) {
  const out = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  // Interleave in small blocks so drift (GC, CPU frequency) hits both sides alike.
  for (let i = 0; i < n; i += 50) {
    for (const t of targets) {
      const xs = out.get(t.name) as number[];
      for (let j = 0; j < 50; j++) xs.push(await fn(t));
    }
  }
  return out;
}

async function throughput(
  t: Target,
  concurrency: number,
  seconds: number,
): Promise<{ rps: number; done: number }> {
  let done = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      await once(t, body);
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { rps: done / ((performance.now() - t0) / 1000), done };
}

function gatewayCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once("message", (m) => {
      const c = (m as { cpu: { user: number; system: number } }).cpu;
      resolve(c.user + c.system);
    });
    child.send("cpu");
  });
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const loadBefore = load();
const home = mkdtempSync(join(tmpdir(), "bottlekit-bench-"));
const viaTsx = process.env["BENCH_TSX"] === "1" || process.env["BENCH_STORE_WORKER"] === "1";
const gatewayEntry = viaTsx ? "gateway-worker.ts" : await buildGatewayWorker();
const upstream = await start("upstream-worker.ts", { BENCH_UPSTREAM_KEY: KEY });
const gateway = await start(
  gatewayEntry,
  {
    BENCH_UPSTREAM_URL: upstream.url,
    BOTTLEKIT_HOME: home,
    OPENAI_API_KEY: KEY,
    ANTHROPIC_API_KEY: "",
  },
  (process.env["BENCH_GATEWAY_ARGV"] ?? "").split(" ").filter((a) => a !== ""),
);
const floor = await start("floor-worker.ts", {
  BENCH_UPSTREAM_URL: upstream.url,
  OPENAI_API_KEY: KEY,
});
try {
  const direct: Target = {
    name: "direct",
    pool: new Pool(upstream.url, { connections: 64, pipelining: 1 }),
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
  };
  const viaGateway: Target = {
    name: "gateway",
    pool: new Pool(gateway.url, { connections: 64, pipelining: 1 }),
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", authorization: "Bearer local" },
  };
  const bare: Target = {
    name: "floor",
    pool: new Pool(floor.url, { connections: 64, pipelining: 1 }),
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
  };
  const translated: Target = {
    name: "translated",
    pool: new Pool(gateway.url, { connections: 64, pipelining: 1 }),
    path: "/v1/messages",
    headers: {
      "content-type": "application/json",
      authorization: "Bearer local",
      "anthropic-version": "2023-06-01",
    },
    payload: messagesBody,
    streamPayload: messagesStreamBody,
  };
  const targets = [direct, viaGateway, bare, translated];
  // direct needs the upstream model id; the gateway gets the provider-prefixed one
  const directBody = body.replace("openai/gpt-4o-mini", "gpt-4o-mini");
  const call = (t: Target) => {
    const t0 = performance.now();
    return once(t, t.payload ?? (t === direct ? directBody : body)).then(
      () => performance.now() - t0,
    );
  };

  // warm-up (JIT, pools, SQLite pages): see WARMUP
  for (let i = 0; i < WARMUP; i++) for (const t of targets) await call(t);

  const lat = await latencies(targets, N1, call);
  const d = lat.get("direct") as number[];
  const g = lat.get("gateway") as number[];
  const added50 = pct(g, 50) - pct(d, 50);
  const added99 = pct(g, 99) - pct(d, 99);
  const fl = lat.get("floor") as number[];

  const tr = lat.get("translated") as number[];
  const tt = await latencies([direct, viaGateway, translated], Math.min(N1, 2000), (t) => ttfb(t));
  const ttAdded = pct(tt.get("gateway") as number[], 50) - pct(tt.get("direct") as number[], 50);
  const ttTranslated =
    pct(tt.get("translated") as number[], 50) - pct(tt.get("gateway") as number[], 50);

  const rpsDirect = (await throughput(direct, 64, SECONDS)).rps;
  // The bare proxy at c=64 too, with its CPU per request: what node:http + undici alone cost.
  const floorCpu0 = await gatewayCpu(floor.child);
  const floorRun = await throughput(bare, 64, SECONDS);
  const rpsFloor = floorRun.rps;
  const floorCpuPerReq = ((await gatewayCpu(floor.child)) - floorCpu0) / 1000 / floorRun.done;
  const cpu0 = await gatewayCpu(gateway.child);
  const up0 = await gatewayCpu(upstream.child);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  let done = 0;
  {
    const until = performance.now() + SECONDS * 1000;
    const worker = async () => {
      while (performance.now() < until) {
        await once(viaGateway, body);
        done++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = await gatewayCpu(gateway.child);
  const up1 = await gatewayCpu(upstream.child);
  const self1 = process.cpuUsage(self0);
  const rpsGateway = done / elapsed;
  const cpuPerReq = (cpu1 - cpu0) / 1000 / done;
  // The other two processes share the same 2 cores: their CPU per request bounds what is left.
  const upstreamCpuPerReq = (up1 - up0) / 1000 / done;
  const loadCpuPerReq = (self1.user + self1.system) / 1000 / done;

  // The budget store's share: one reserve + settle pair on the same kind of database.
  const storeHome = mkdtempSync(join(tmpdir(), "bottlekit-bench-store-"));
  const store = await openStore(`sqlite:${storeHome}/bottlekit.db`, { home: storeHome });
  await store.defineBudget({
    scope: "bottle",
    key: "default",
    provider: "openai",
    tokens: 1e12,
    source: "flag",
  });
  const subject = { bottle: "default", parents: [], agent: "default", provider: "openai" };
  const pair = async () => {
    const r = await store.reserve({ ...subject, estimateTokens: 100 });
    if (r.ok) await store.settle(r.id, { model: "gpt-4o-mini", inputTokens: 12, outputTokens: 10 });
  };
  for (let i = 0; i < 500; i++) await pair();
  const ts = performance.now();
  for (let i = 0; i < 3000; i++) await pair();
  const storeMs = (performance.now() - ts) / 3000;
  // The same pairs 64 at a time, as at c=64: group commit shares transactions between them.
  const cs = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let i = 0; i < 50; i++) await pair();
    }),
  );
  const storeMs64 = (performance.now() - cs) / (64 * 50);
  await store.close();
  rmSync(storeHome, { recursive: true, force: true });

  const f = (x: number) => x.toFixed(3);
  console.log("bottle-gateway bench (same run, same local upstream; DLP + metering + budgets on)");
  console.log(
    `gateway process: ${viaTsx ? "sources through tsx (keepNames)" : "tsup build of the sources, as shipped"}; Node ${process.version}`,
  );
  console.log(
    `load average before ${loadBefore}, after ${load()} (2 cores; figures degrade on a busy machine)`,
  );
  console.log(`(a) c=1 non-streaming, n=${N1} each`);
  console.log(`    direct  p50 ${f(pct(d, 50))} ms  p99 ${f(pct(d, 99))} ms`);
  console.log(`    gateway p50 ${f(pct(g, 50))} ms  p99 ${f(pct(g, 99))} ms`);
  console.log(`    added   p50 ${f(added50)} ms (target < 0.5)  p99 ${f(added99)} ms (target < 3)`);
  console.log(
    `    floor: a bare node:http + undici proxy adds p50 ${f(pct(fl, 50) - pct(d, 50))} ms, p99 ${f(pct(fl, 99) - pct(d, 99))} ms`,
  );
  console.log("(b) time to first streamed byte");
  console.log(`    added   p50 ${f(ttAdded)} ms (target < 1)`);
  console.log(`(c) c=64 non-streaming, ${SECONDS} s each`);
  console.log(`    direct  ${rpsDirect.toFixed(0)} req/s`);
  console.log(
    `    gateway ${rpsGateway.toFixed(0)} req/s (target >= 4000), gateway CPU ${f(cpuPerReq)} ms/request`,
  );
  console.log(
    `    on the same cores during that run: fake upstream ${f(upstreamCpuPerReq)} ms/request, load generator ${f(loadCpuPerReq)} ms/request`,
  );
  console.log(
    `    floor (bare node:http + undici proxy) ${rpsFloor.toFixed(0)} req/s, CPU ${f(floorCpuPerReq)} ms/request`,
  );
  console.log(
    `    budget store reserve+settle measured alone (same run): ${f(storeMs)} ms/pair one at a time, ${f(storeMs64)} ms/pair 64 at a time`,
  );
  console.log("(d) translated (Messages client → Chat Completions model) vs the same-API call");
  console.log(
    `    translated p50 ${f(pct(tr, 50))} ms  p99 ${f(pct(tr, 99))} ms; added over same-API p50 ${f(pct(tr, 50) - pct(g, 50))} ms (target <= 0.2)`,
  );
  console.log(`    time to first streamed byte added over same-API p50 ${f(ttTranslated)} ms`);
  await translated.pool.close();
  await direct.pool.close();
  await viaGateway.pool.close();
  await bare.pool.close();
} finally {
  floor.child.send("stop");
  gateway.child.send("stop");
  upstream.child.send("stop");
  await new Promise((r) => setTimeout(r, process.env["BENCH_PROF"] ? 3000 : 300));
  rmSync(home, { recursive: true, force: true });
}
