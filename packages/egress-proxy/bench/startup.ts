/**
 * The proxy's share of `bottle run`'s start-up, step by step, as the run takes it: the module's
 * init (`import`), the gateway's listen (not the proxy's: node:http and node:cluster are loaded by
 * then), `createProxyHost` as the gateway's proxy door calls it, `register` of a session, the
 * sandbox probe's CONNECT to an undeclared host through the session's socket (refused), the
 * session's scanners as the gateway's `ready()` builds them (`prepareSessions`), a plain request
 * (refused: no route), and with `--intercept` the first
 * intercepted connection (CONNECT to the LLM host, TLS with the bottle's CA, one request; the
 * client's own TLS load is counted in that step too). Each run is a fresh process, since the
 * first load is what is measured; ms and minor page faults per step, median of the runs.
 *
 * Bundle it as the bin is bundled (tsx distorts load times), then run it:
 *   npx esbuild bench/startup.ts --bundle --platform=node --format=cjs --minify \
 *     --conditions=@bottlekit/source --outfile=/tmp/x/new.cjs
 *   node /tmp/x/new.cjs [--runs 15] [--intercept] [/tmp/x/old.cjs ...]
 * Several bundles are run interleaved (one run of each in turn), so a loaded machine weighs on
 * them alike. Page faults are the figure to trust on a shared machine; wall times are noisy.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

type Row = Record<string, { ms: number; faults: number }>;
interface ChildOut {
  steps: Row;
  loaded: { tls: boolean; https: boolean };
}

const BOTTLE = "startup-bench";
const LLM_HOST = "api.startup.bench.test";

function exchange(socketPath: string, request: string): Promise<{ head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buf = "";
    socket.setEncoding("latin1");
    socket.once("error", reject);
    socket.on("data", function onData(chunk: string) {
      buf += chunk;
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      resolve({ head: buf.slice(0, end), socket });
    });
    socket.write(request);
  });
}

async function child(intercept: boolean, home: string): Promise<void> {
  const usage = () => process.resourceUsage().minorPageFault;
  const steps: Row = {};
  let t = performance.now();
  let f = usage();
  const step = (name: string) => {
    const now = performance.now();
    const faults = usage();
    steps[name] = { ms: now - t, faults: faults - f };
    t = now;
    f = faults;
  };
  const proxy = await import("../src/index.ts");
  step("init");
  // what the run has done by now besides: the gateway listens on 127.0.0.1 (node:http, and
  // node:cluster, which every listen loads)
  const http = await import("node:http");
  const gateway = http.createServer();
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  step("(gateway listen)");
  const host = proxy.createProxyHost({
    home,
    credentialSource: () => undefined,
    llmHandler: (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    },
    onAudit: () => undefined,
    deferSessionScanners: true,
  });
  step("createProxyHost");
  const reg = await host.register({ bottle: BOTTLE, routes: [], llmHosts: [LLM_HOST] });
  step("register");
  const modules = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
  const loaded = {
    tls: modules.includes("NativeModule tls"),
    https: modules.includes("NativeModule https"),
  };
  const probeHost = "bottle-probe-0123456789ab.invalid";
  const denied = await exchange(
    reg.proxySocketPath,
    `CONNECT ${probeHost}:443 HTTP/1.1\r\nHost: ${probeHost}:443\r\n\r\n`,
  );
  denied.socket.destroy();
  if (!denied.head.startsWith("HTTP/1.1 403")) throw new Error(`probe CONNECT: ${denied.head}`);
  step("probe CONNECT");
  // what the gateway's ready() does for the proxy while the sandbox probes
  host.prepareSessions();
  step("prepareSessions");
  const plain = await exchange(
    reg.proxySocketPath,
    `GET http://${probeHost}/ HTTP/1.1\r\nHost: ${probeHost}\r\nConnection: close\r\n\r\n`,
  );
  plain.socket.destroy();
  if (!plain.head.startsWith("HTTP/1.1 403")) throw new Error(`plain request: ${plain.head}`);
  step("plain request");
  if (intercept) {
    const { certPem } = await host.ca(BOTTLE);
    const tunnel = await exchange(
      reg.proxySocketPath,
      `CONNECT ${LLM_HOST}:443 HTTP/1.1\r\nHost: ${LLM_HOST}:443\r\n\r\n`,
    );
    if (!tunnel.head.startsWith("HTTP/1.1 200")) throw new Error(`CONNECT: ${tunnel.head}`);
    tunnel.socket.removeAllListeners("data");
    tunnel.socket.setEncoding("binary" as BufferEncoding);
    const tls = await import("node:tls");
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ socket: tunnel.socket, servername: LLM_HOST, ca: certPem });
      let body = "";
      s.setEncoding("utf8");
      s.once("error", reject);
      s.on("data", (c: string) => {
        body += c;
      });
      s.once("end", () => resolve(body));
      s.write(`GET /v1/x HTTP/1.1\r\nHost: ${LLM_HOST}\r\nConnection: close\r\n\r\n`);
    });
    if (!answer.startsWith("HTTP/1.1 200")) throw new Error(`intercepted: ${answer.slice(0, 80)}`);
    step("first intercept");
  }
  await host.close();
  gateway.close();
  const out: ChildOut = { steps, loaded };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function parent(args: string[]): void {
  let runs = 15;
  let intercept = false;
  const scripts: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--runs") runs = Number(args[++i]);
    else if (a === "--intercept") intercept = true;
    else scripts.push(a);
  }
  const self = process.argv[1] as string;
  const all = [self, ...scripts];
  // one home with the bottle's CA already made: a run opens an existing CA, as most runs do
  const home = mkdtempSync(join(tmpdir(), "bk-pxs-"));
  mkdirSync(join(home, "state"), { recursive: true });
  const results = new Map<string, ChildOut[]>(all.map((s) => [s, []]));
  for (let r = -1; r < runs; r++) {
    for (const script of all) {
      const res = spawnSync(
        process.execPath,
        [...process.execArgv, script, "--child", home, ...(intercept ? ["--intercept"] : [])],
        { encoding: "utf8" },
      );
      if (res.status !== 0) throw new Error(`${script}: ${res.stderr}`);
      if (r < 0) continue; // the first round makes the CA and warms the page cache
      results.get(script)?.push(JSON.parse(res.stdout) as ChildOut);
    }
  }
  for (const script of all) {
    const outs = results.get(script) ?? [];
    const names = Object.keys(outs[0]?.steps ?? {});
    const load = outs[0]?.loaded;
    process.stdout.write(
      `${script} (median of ${outs.length}; after register: tls ${load?.tls ? "loaded" : "not loaded"}, https ${load?.https ? "loaded" : "not loaded"})\n`,
    );
    for (const n of names) {
      const ms = median(outs.map((o) => o.steps[n]?.ms ?? 0));
      const faults = median(outs.map((o) => o.steps[n]?.faults ?? 0));
      process.stdout.write(
        `  ${n.padEnd(16)} ${ms.toFixed(1).padStart(6)} ms ${String(faults).padStart(5)} faults\n`,
      );
    }
  }
}

const argv = process.argv.slice(2);
// no top-level await: the bench is bundled as CommonJS, like the bin
if (argv[0] === "--child") {
  child(argv.includes("--intercept"), argv[1] as string).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
} else parent(argv);
