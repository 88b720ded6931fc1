/**
 * The two small programs that run inside the sandbox, kept as plain JavaScript source so the
 * library ships them without a build step of their own. They run under the sandbox's Node
 * (the host's `process.execPath`, visible read-only).
 *
 * launcher.mjs — stage 1, no seccomp filter yet: closes inherited descriptors it was not given
 * on purpose, starts the proxy bridge (127.0.0.1:PORT → the bind-mounted unix socket), then
 * starts stage 2: a nested bwrap with `--seccomp 9` (own user and pid namespaces, so the agent
 * cannot see or trace the bridge) that runs the probe and then execs the agent. It relays the
 * agent's exit status and forwards termination signals.
 *
 * probe.mjs — stage 2, under the filter: checks the walls from the inside, sends its report
 * (and the environment it sees) to the host on fd 3, and waits for the host's verdict.
 */

export const RUN_DIR = "/run/bottle";
export const PROXY_SOCKET_IN_SANDBOX = "/run/bottle-proxy.sock";
/** Exit status of the sandbox when the probe refused to start the agent. */
export const PROBE_REFUSED_EXIT = 3;

export const LAUNCHER_SOURCE = String.raw`
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

// Descriptors inherited without close-on-exec (from whoever started the host process) would
// reach the agent: close every one except stdio and the probe channel (fd 3).
for (const name of fs.readdirSync("/proc/self/fd")) {
  const fd = Number(name);
  if (fd <= 2 || (fd === 3 && config.probe)) continue;
  let flags = "";
  try { flags = fs.readFileSync("/proc/self/fdinfo/" + fd, "utf8"); } catch { continue; }
  const m = /flags:\s*([0-7]+)/.exec(flags);
  if (m && (parseInt(m[1], 8) & 0o2000000) === 0) { try { fs.closeSync(fd); } catch {} }
}

function startBridge() {
  return new Promise((resolve, reject) => {
    const server = net.createServer((client) => {
      const upstream = net.connect(config.bridge.socket);
      client.pipe(upstream).pipe(client);
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on("error", end); upstream.on("error", end);
      client.on("close", end); upstream.on("close", end);
    });
    server.on("error", reject);
    server.listen(config.bridge.port, "127.0.0.1", () => { server.unref(); resolve(server); });
  });
}

async function main() {
  if (config.bridge) await startBridge();
  const filter = fs.openSync(config.filter, "r");
  const stdio = ["inherit", "inherit", "inherit", config.probe ? 3 : "ignore", "ignore", "ignore", "ignore", "ignore", "ignore", filter];
  const child = spawn(config.bwrap, config.inner, { stdio });
  fs.closeSync(filter);
  if (config.probe) { try { fs.closeSync(3); } catch {} }
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"]) {
    process.on(sig, () => { try { child.kill(sig); } catch {} });
  }
  child.on("error", (e) => { process.stderr.write("bottle sandbox: cannot start stage 2: " + e.message + "\n"); process.exit(125); });
  child.on("exit", (code, signal) => {
    if (signal) {
      const n = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 15;
      process.exit(128 + n);
    }
    process.exit(code ?? 1);
  });
}
main().catch((e) => { process.stderr.write("bottle sandbox: " + e.message + "\n"); process.exit(125); });
`;

export const PROBE_SOURCE = String.raw`
import dns from "node:dns";
import fs from "node:fs";
import net from "node:net";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const checks = [];
const add = (name, ok, detail) => checks.push({ name, ok, detail });
const within = (ms, p) => Promise.race([p, new Promise((r) => setTimeout(() => r({ timeout: true }), ms))]);

function tryConnect(opts) {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    s.on("connect", () => { s.destroy(); resolve({ connected: true }); });
    s.on("error", (e) => resolve({ connected: false, code: e.code }));
  });
}

async function checkUid() {
  const uid = process.getuid();
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const capEff = /CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? "?";
  const ok = uid !== 0 && /^0+$/.test(capEff);
  add("not root, no capabilities", ok, "uid " + uid + ", CapEff " + capEff);
}

async function checkUnix() {
  const r = await within(1000, tryConnect({ path: config.unixProbePath }));
  const ok = !r.timeout && !r.connected && (r.code === "EPERM" || r.code === "EACCES");
  add("socket(AF_UNIX) refused", ok, r.timeout ? "no answer" : r.connected ? "connected to " + config.unixProbePath : String(r.code));
}

async function checkTcp() {
  const bad = [];
  for (const target of config.tcpTargets) {
    const r = await within(1500, tryConnect({ host: target.host, port: target.port }));
    if (r.connected) bad.push(target.host + ":" + target.port);
  }
  add("direct TCP fails", bad.length === 0, bad.length ? "connected to " + bad.join(", ") : "refused or unreachable");
}

async function checkDns() {
  const r = await within(2000, dns.promises.lookup(config.dnsName).then((a) => ({ address: a.address }), (e) => ({ code: e.code })));
  const ok = r.timeout || r.address === undefined;
  add("DNS fails", ok, r.timeout ? "no answer" : r.address ? config.dnsName + " resolved to " + r.address : String(r.code));
}

async function checkWrites() {
  const wrote = [];
  for (const dir of config.writeProbes) {
    const file = dir.replace(/\/$/, "") + "/.bottle-probe-" + process.pid;
    try {
      fs.writeFileSync(file, "x", { flag: "wx" });
      wrote.push(dir);
      try { fs.unlinkSync(file); } catch {}
    } catch {}
  }
  add("writes outside the writable paths fail", wrote.length === 0, wrote.length ? "wrote in " + wrote.join(", ") : config.writeProbes.length + " paths refused");
}

async function checkProxy() {
  if (!config.proxy) return;
  const answer = await within(3000, new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port: config.proxy.port });
    let buf = "";
    s.on("connect", () => s.write("CONNECT " + config.proxy.undeclaredHost + ":443 HTTP/1.1\r\nHost: " + config.proxy.undeclaredHost + ":443\r\n\r\n"));
    s.on("data", (d) => { buf += d; if (buf.includes("\r\n")) { s.destroy(); resolve({ line: buf.split("\r\n")[0] }); } });
    s.on("error", (e) => resolve({ code: e.code }));
    s.on("end", () => resolve({ line: buf.split("\r\n")[0] }));
  }));
  const m = answer.line && /^HTTP\/1\.[01] (\d{3})/.exec(answer.line);
  add("proxy answers", Boolean(m), m ? answer.line : answer.timeout ? "no answer" : String(answer.code ?? answer.line));
  const status = m ? Number(m[1]) : 0;
  add("proxy refuses an undeclared host", Boolean(m) && (status < 200 || status >= 300), m ? config.proxy.undeclaredHost + " → " + status : "no answer");
}

async function main() {
  // All checks at once (each is bounded by its own timeout); the report keeps a fixed order.
  await Promise.all([checkUid(), checkUnix(), checkTcp(), checkDns(), checkWrites(), checkProxy()]);
  const order = ["not root", "socket(AF_UNIX)", "direct TCP", "DNS", "writes", "proxy answers", "proxy refuses"];
  checks.sort((a, b) => order.findIndex((o) => a.name.startsWith(o)) - order.findIndex((o) => b.name.startsWith(o)));
  const report = JSON.stringify({ checks, env: process.env }) + "\n";
  fs.writeSync(3, report);
  const buf = Buffer.alloc(16);
  let n = 0;
  // The channel may be non-blocking: retry EAGAIN (for up to ~30 s) instead of reading nothing.
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 3000; i++) {
    try { n = fs.readSync(3, buf, 0, 16, null); break; } catch (e) { if (e.code !== "EAGAIN") break; Atomics.wait(nap, 0, 0, 10); }
  }
  const verdict = buf.subarray(0, n).toString("utf8").trim();
  process.exit(verdict === "go" ? 0 : ${PROBE_REFUSED_EXIT});
}
main().catch(() => process.exit(${PROBE_REFUSED_EXIT}));
`;
