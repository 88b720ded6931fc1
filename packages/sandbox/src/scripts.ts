/**
 * The programs that run inside the sandbox, kept as plain source so the library ships them without
 * a build step of their own. The launcher runs under the sandbox's Node (the host's
 * `process.execPath`, visible read-only); the gate is a POSIX shell script.
 *
 * launcher.cjs — stage 1, no seccomp filter yet: closes inherited descriptors it was not given on
 * purpose, starts the proxy bridge (127.0.0.1:PORT → the bind-mounted unix socket), then starts
 * stage 2: a nested bwrap with `--seccomp 9` (own user and pid namespaces, so the agent cannot see
 * or trace the bridge). With the startup probe, it also checks the walls (direct TCP, DNS, writes)
 * as soon as stage 2 is started, and the proxy once the environment is sent — stage 2 shares its
 * network and mounts. Stage 2 begins with the gate; with a late setup it starts at once, before
 * the environment the host sends on fd 3, which the launcher passes on to the gate as a sh script
 * (fd 6). It sends the whole report to the host on fd 3, and passes the host's verdict to the
 * gate (fd 5). Without the probe (no gate), a late setup's stage 2 waits for that environment. It
 * relays the agent's exit status and forwards termination signals. One Node process per
 * sandbox: the gate is a shell.
 *
 * gate (GATE_SCRIPT) — stage 2, under the filter, before the agent: tries to connect to a unix
 * socket the launcher listens on (util-linux `logger -u`, else a one-line Node check), and sends
 * the result and its own /proc status (uid, capabilities, seccomp mode) to the launcher on fd 4;
 * then applies the final environment (fd 6), reports it (what the agent will get), waits for the
 * verdict on fd 5 and execs the agent.
 */

export const RUN_DIR = "/run/bottle";
export const PROXY_SOCKET_IN_SANDBOX = "/run/bottle-proxy.sock";
/** Exit status of the sandbox when the probe refused to start the agent. */
export const PROBE_REFUSED_EXIT = 3;
/** The unix socket the launcher listens on for the gate's AF_UNIX check (/tmp is the sandbox's own tmpfs). */
export const GATE_UNIX_PROBE = "/tmp/.bottle-gate-probe.sock";

/** The last line of the launcher's environment script sets this as `$1`: the script arrived whole. */
export const GATE_ENV_APPLIED = "bottle-env-applied";

/**
 * Stage 2's first program. `$1` is the Node binary (fallback for the AF_UNIX check when there is
 * no `logger`), then the agent's argv. Its descriptors: 4 the report to the launcher; 5 the
 * launcher's lines, "env" once the environment script is in 6, then the verdict ("go" or not);
 * 6 that script, in a file the launcher unlinked (Node's pipes to a child are socket pairs, which
 * `. /dev/fd/N` cannot open; a regular file reopens through /proc from its start, and `.` reads
 * it buffered, where dash's `read` would take a syscall per byte). All three are closed before
 * the agent starts.
 *
 * What does not depend on the environment comes first (the AF_UNIX attempt, the /proc status):
 * with a late setup, that runs while the host still waits for its controller. The environment
 * report comes from a subshell that sources the script and execs base64 (the fork the command
 * substitution makes anyway): base64's own environment is what the shell exports. The gate shell
 * itself sources the script only after the verdict, and from there on assigns no variable (the
 * environment may name any, and the agent must get it unchanged), expands no word unquoted and
 * looks nothing up on PATH (IFS and PATH may be anything): the script's last line puts its marker
 * in the positional parameters, and base64's path, found before, is there too.
 */
export const GATE_SCRIPT = [
  'node="$1"; shift',
  `if command -v logger >/dev/null 2>&1; then u=$(LC_ALL=C logger --socket-errors=on -u ${GATE_UNIX_PROBE} -- bottle-probe 2>&1); c=$?;`,
  `else u=$("$node" -e 'require("net").connect(process.argv[1]).on("connect",()=>{console.log("connected");process.exit(0)}).on("error",(e)=>{console.log(e.code);process.exit(1)})' ${GATE_UNIX_PROBE} 2>&1); c=$?; fi`,
  // The unix attempt's output on one line (newlines as spaces), with shell builtins only.
  "nl='\n'",
  'r=""; while :; do case $u in *"$nl"*) r="$r${u%%"$nl"*} "; u=${u#*"$nl"};; *) r="$r$u"; break;; esac; done',
  'printf "unix %s %s\\n" "$c" "$r" >&4',
  // The shell's own status (it is the process that execs the agent), read by a builtin.
  'while IFS= read -r l; do printf "%s\\n" "$l"; done </proc/self/status >&4',
  // base64's full path, looked up now with builtins: the final environment may change PATH.
  'b=base64; o=$IFS; IFS=:; set -f; for d in $PATH; do if [ -n "$d" ] && [ -f "$d/base64" ] && [ -x "$d/base64" ]; then b=$d/base64; break; fi; done; set +f; IFS=$o',
  `IFS= read -r x <&5 && [ "$x" = env ] || exit ${PROBE_REFUSED_EXIT}`,
  'set -- "$b" "$@"',
  `printf "environ %s\\nend\\n" "$(. /dev/fd/6 && [ "$1" = ${GATE_ENV_APPLIED} ] && exec "$2" -w0 /proc/self/environ)" >&4`,
  "exec 4>&-",
  `IFS= read -r v <&5 && [ "$v" = go ] || exit ${PROBE_REFUSED_EXIT}`,
  "shift",
  // Variables the gate set above are unset or exported by the script, like every other one.
  ". /dev/fd/6",
  "exec 5<&- 6<&-",
  `[ "$1" = ${GATE_ENV_APPLIED} ] || exit ${PROBE_REFUSED_EXIT}`,
  "shift",
  'exec "$@"',
].join("\n");

/**
 * The launcher's `envScript(start, final)`: the POSIX sh script that turns the environment stage 2
 * was started with (`start`) into `final` — `unset NAME` for each variable of `start` that `final`
 * lacks, `export NAME='value'` for each of `final` (every `'` as `'\''`), then the marker line.
 * A name that is not ^[A-Za-z_][A-Za-z0-9_]*$ throws (the launcher then stops: the agent never
 * starts). PWD is left to the shell, as when the environment came from spawn: it sets PWD itself.
 * (dash refuses a non-numeric OPTIND, and stops: also fail closed.) Linear in the environment's size.
 * Kept as source text so the launcher (plain CommonJS) embeds it and the tests run the same text.
 */
export const ENV_SCRIPT_SOURCE = String.raw`
function envScript(start, final) {
  const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
  const refuse = (name) => { throw new Error("refused: " + JSON.stringify(name.slice(0, 64)) + " is not a variable name the gate can set"); };
  const lines = [];
  for (const name of Object.keys(start)) {
    if (name === "PWD" || Object.prototype.hasOwnProperty.call(final, name)) continue;
    if (!NAME.test(name)) refuse(name);
    lines.push("unset " + name);
  }
  for (const name of Object.keys(final)) {
    if (name === "PWD") continue;
    if (!NAME.test(name)) refuse(name);
    const value = final[name];
    if (typeof value !== "string" || value.includes("\0")) throw new Error("refused: the value of " + name + " is not a string without NUL");
    lines.push("export " + name + "='" + value.split("'").join("'\\''") + "'");
  }
  lines.push("set -- ${GATE_ENV_APPLIED} \"$@\"");
  return lines.join("\n") + "\n";
}
`;

/** The checks every probe report of the launcher holds (the host refuses a report without one). */
export const LAUNCHER_CHECKS = [
  "not root, no capabilities",
  "socket(AF_UNIX) refused",
  "direct TCP fails",
  "DNS fails",
  "writes outside the writable paths fail",
] as const;
/** And these when the sandbox has a proxy bridge. */
export const LAUNCHER_PROXY_CHECKS = ["proxy answers", "proxy refuses an undeclared host"] as const;

export const LAUNCHER_SOURCE = String.raw`
"use strict";
const { spawn } = require("node:child_process");
const dns = require("node:dns");
const fs = require("node:fs");
const net = require("node:net");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
${ENV_SCRIPT_SOURCE}

// Descriptors inherited without close-on-exec (from whoever started the host process) would
// reach the agent: close every one except stdio and the probe channel (fd 3).
for (const name of fs.readdirSync("/proc/self/fd")) {
  const fd = Number(name);
  if (fd <= 2 || (fd === 3 && (config.probe || config.late))) continue;
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

// ---- the probe's checks that stage 1 can make for stage 2 (same network namespace, same mounts) ----
const within = (ms, p) => Promise.race([p, new Promise((r) => setTimeout(() => r({ timeout: true }), ms))]);

function tryConnect(opts) {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    s.on("connect", () => { s.destroy(); resolve({ connected: true }); });
    s.on("error", (e) => resolve({ connected: false, code: e.code }));
  });
}

async function checkTcp(p, add) {
  const bad = [];
  for (const target of p.tcpTargets) {
    const r = await within(1500, tryConnect({ host: target.host, port: target.port }));
    if (r.connected) bad.push(target.host + ":" + target.port);
  }
  add("direct TCP fails", bad.length === 0, bad.length ? "connected to " + bad.join(", ") : "refused or unreachable");
}

async function checkDns(p, add) {
  const r = await within(2000, dns.promises.lookup(p.dnsName).then((a) => ({ address: a.address }), (e) => ({ code: e.code })));
  const ok = r.timeout || r.address === undefined;
  add("DNS fails", ok, r.timeout ? "no answer" : r.address ? p.dnsName + " resolved to " + r.address : String(r.code));
}

async function checkWrites(p, add) {
  const wrote = [];
  for (const dir of p.writeProbes) {
    const file = dir.replace(/\/$/, "") + "/.bottle-probe-" + process.pid;
    try {
      fs.writeFileSync(file, "x", { flag: "wx" });
      wrote.push(dir);
      try { fs.unlinkSync(file); } catch {}
    } catch {}
  }
  add("writes outside the writable paths fail", wrote.length === 0, wrote.length ? "wrote in " + wrote.join(", ") : p.writeProbes.length + " paths refused");
}

/**
 * Asks the proxy, through the bridge, for an undeclared host. Started with stage 2: with a late
 * setup, the host's relay holds the request until the proxy is known, so that only the proxy's
 * own answer is left for after the setup.
 */
function askProxy(p) {
  if (!p.proxy) return undefined;
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port: p.proxy.port });
    let buf = "";
    s.on("connect", () => s.write("CONNECT " + p.proxy.undeclaredHost + ":443 HTTP/1.1\r\nHost: " + p.proxy.undeclaredHost + ":443\r\n\r\n"));
    s.on("data", (d) => { buf += d; if (buf.includes("\r\n")) { s.destroy(); resolve({ line: buf.split("\r\n")[0] }); } });
    s.on("error", (e) => resolve({ code: e.code }));
    s.on("end", () => resolve({ line: buf.split("\r\n")[0] }));
  });
}

/** The proxy's answer to askProxy, within 3 s of the environment being sent. */
async function checkProxy(p, add, asked) {
  if (!p.proxy) return;
  const answer = await within(3000, asked);
  const m = answer.line && /^HTTP\/1\.[01] (\d{3})/.exec(answer.line);
  add("proxy answers", Boolean(m), m ? answer.line : answer.timeout ? "no answer" : String(answer.code ?? answer.line));
  const status = m ? Number(m[1]) : 0;
  add("proxy refuses an undeclared host", Boolean(m) && (status < 200 || status >= 300), m ? p.proxy.undeclaredHost + " \u2192 " + status : "no answer");
}

/** What the gate (stage 2, under the filter) reported on fd 4, up to its "end" line. */
function readGate(stream) {
  return new Promise((resolve) => {
    let text = "";
    const done = () => resolve(text);
    stream.on("data", (d) => {
      text += d.toString("latin1");
      if (/(^|\n)end\n/.test(text) || text.length > 4 * 1024 * 1024) { stream.removeAllListeners("data"); done(); }
    });
    stream.on("error", done);
    stream.on("close", done);
  });
}

function gateChecks(text, unixConnections, add) {
  const unixLine = /^unix (\d+) (.*)$/m.exec(text);
  const refused = unixLine !== null && unixLine[1] !== "0" && /Operation not permitted|EPERM/.test(unixLine[2]);
  const unixDetail = unixConnections > 0 ? "connected to " + ${JSON.stringify(GATE_UNIX_PROBE)} : unixLine === null ? "the agent's side did not report" : refused ? "EPERM" : unixLine[2].trim() || "exit " + unixLine[1];
  const uid = /^Uid:\s+(\d+)/m.exec(text)?.[1];
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(text)?.[1] ?? "?";
  const seccomp = /^Seccomp:\s+(\d+)/m.exec(text)?.[1] ?? "?";
  add("not root, no capabilities", uid !== undefined && uid !== "0" && /^0+$/.test(capEff), "uid " + (uid ?? "?") + ", CapEff " + capEff);
  add("socket(AF_UNIX) refused", refused && unixConnections === 0 && seccomp === "2", unixDetail + (seccomp === "2" ? "" : ", seccomp mode " + seccomp));
  const env = {};
  const b64 = /^environ ([A-Za-z0-9+/=]*)$/m.exec(text)?.[1] ?? "";
  for (const entry of Buffer.from(b64, "base64").toString("utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

// The checks of the walls (direct TCP, DNS, writes) need neither stage 2 nor the proxy: they start
// right after stage 2 is started, whose start-up (and a late setup's wait) they then overlap
// instead of delaying it (their set-up is synchronous).
const checks = [];
const add = (name, ok, detail) => checks.push({ name, ok, detail });
let probeConfig;
let wallChecks;
function startWallChecks() {
  if (!config.probe || wallChecks) return;
  probeConfig = JSON.parse(fs.readFileSync(config.probeConfig, "utf8"));
  wallChecks = Promise.all([checkTcp(probeConfig, add), checkDns(probeConfig, add), checkWrites(probeConfig, add)]);
}

/**
 * Stage 2 is already running: its gate reports its unix attempt and status on fd 4 while the
 * final environment is awaited (a late setup), then waits for "env" on fd 5, the script being in
 * its fd 6 (envFd here). The gate's report, and the proxy, are timed from then on.
 */
async function probeAndGate(child, envFd) {
  startWallChecks();
  const p = probeConfig;
  const gate = readGate(child.stdio[4]);
  const asked = askProxy(p);
  const finalEnv = config.late ? await lateEnv() : process.env;
  const script = Buffer.from(envScript(process.env, finalEnv), "utf8");
  for (let off = 0; off < script.length; ) off += fs.writeSync(envFd, script, off);
  fs.closeSync(envFd);
  child.stdio[5].on("error", () => {});
  child.stdio[5].write("env\n");
  const [raw] = await Promise.all([within(15000, gate), wallChecks, checkProxy(p, add, asked)]);
  const env = raw && !raw.timeout ? gateChecks(raw, unixConnections, add) : (add("not root, no capabilities", false, "the agent's side did not report"), add("socket(AF_UNIX) refused", false, "the agent's side did not report"), {});
  // A gate that stopped before its environment was in (or base64 failed) reports none: refuse.
  if (Object.keys(env).length === 0) add("probe answered", false, "the agent's side did not report its environment");
  const order = ["not root", "socket(AF_UNIX)", "direct TCP", "DNS", "writes", "proxy answers", "proxy refuses"];
  checks.sort((a, b) => order.findIndex((o) => a.name.startsWith(o)) - order.findIndex((o) => b.name.startsWith(o)));
  const verdict = await hostVerdict(JSON.stringify({ checks, env }) + "\n");
  unixServer.close();
  child.stdio[5].end(verdict + "\n");
}

/**
 * The host channel (fd 3): one line per message. With a late setup the host first sends the
 * stage-2 environment ({"env": {...}}) once its controller is ready; then this side sends the
 * probe report, and the host answers "go" or "stop".
 */
let channel;
const lines = [];
let waiting;
let channelDone = false;
function openChannel() {
  if (channel) return;
  channel = new net.Socket({ fd: 3, readable: true, writable: true });
  let buf = "";
  const wake = () => { if (waiting) { const w = waiting; waiting = undefined; w(); } };
  channel.on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    if (buf.length > 64 * 1024 * 1024) { channelDone = true; }
    wake();
  });
  const end = () => { channelDone = true; wake(); };
  channel.on("error", end);
  channel.on("end", end);
  channel.on("close", end);
}
/** The next line from the host, or undefined when the channel ended or ms passed. */
function nextLine(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { waiting = undefined; resolve(undefined); }, ms);
    const check = () => {
      if (lines.length > 0) { clearTimeout(timer); resolve(lines.shift()); return; }
      if (channelDone) { clearTimeout(timer); resolve(undefined); return; }
      waiting = check;
    };
    check();
  });
}

/** Sends the report to the host on fd 3 and resolves to its verdict ("go" or "stop"). */
async function hostVerdict(report) {
  try { openChannel(); } catch { return "stop"; }
  channel.write(report);
  const line = await nextLine(30000);
  channel.destroy();
  return line !== undefined && line.trim() === "go" ? "go" : "stop";
}

/** The stage-2 environment the host sends once its controller is ready (late setup). */
async function lateEnv() {
  openChannel();
  const line = await nextLine(config.lateTimeoutMs);
  if (line === undefined) throw new Error("no environment from the host in time");
  const msg = JSON.parse(line);
  if (!msg || typeof msg.env !== "object" || msg.env === null) throw new Error("unreadable set-up from the host");
  const env = {};
  for (const [k, v] of Object.entries(msg.env)) if (typeof v === "string") env[k] = v;
  return env;
}

let unixConnections = 0;
let unixServer;

/** An empty file on the sandbox's own /tmp, already unlinked: only its descriptors reach it. */
function scriptFile() {
  const dir = fs.mkdtempSync("/tmp/.bottle-env-");
  const fd = fs.openSync(dir + "/env.sh", "wx", 0o600);
  fs.unlinkSync(dir + "/env.sh");
  fs.rmdirSync(dir);
  return fd;
}

async function main() {
  if (config.bridge) await startBridge();
  if (config.probe) {
    unixServer = net.createServer((c) => { unixConnections++; c.destroy(); });
    await new Promise((resolve, reject) => { unixServer.on("error", reject); unixServer.listen(${JSON.stringify(GATE_UNIX_PROBE)}, resolve); });
    unixServer.unref();
  }
  // With the probe, stage 2 starts now, a late setup or not: its gate makes the checks that do
  // not depend on the environment, then waits for the final one (probeAndGate). Without the
  // probe there is no gate: the agent starts once a late setup has sent its environment.
  let env = process.env;
  if (config.late && !config.probe) env = await lateEnv();
  const filter = fs.openSync(config.filter, "r");
  const envFd = config.probe ? scriptFile() : "ignore";
  const gatePipe = config.probe ? "pipe" : "ignore";
  const stdio = ["inherit", "inherit", "inherit", "ignore", gatePipe, gatePipe, envFd, "ignore", "ignore", filter];
  const child = spawn(config.bwrap, config.inner, { stdio, env });
  fs.closeSync(filter);
  startWallChecks();
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
  if (config.probe) await probeAndGate(child, envFd);
}
main().catch((e) => { process.stderr.write("bottle sandbox: " + e.message + "\n"); process.exit(125); });
`;
