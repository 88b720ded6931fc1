import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { SandboxError } from "./errors.ts";
import { inspectHost } from "./host.ts";
import { envScript, launcherConfig, parseReport, setupLine } from "./launcher.ts";
import { type HostFacts, planSandbox, type SandboxPlan, type SandboxSpec } from "./plan.ts";
import {
  LAUNCHER_CHECKS,
  LAUNCHER_PERL_SOURCE,
  LAUNCHER_PROXY_CHECKS,
  LAUNCHER_SOURCE,
  PROBE_REFUSED_EXIT,
  PROXY_SOCKET_IN_SANDBOX,
  RUN_DIR,
} from "./scripts.ts";
import { seccompFilter } from "./seccomp.ts";

export interface ProbeCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ProbeReport {
  ok: boolean;
  checks: ProbeCheck[];
}

/** The host side of the credential check: is any of these values (or an encoding of it) a secret the host holds? */
export type EnvChecker = (env: Readonly<Record<string, string>>) => { ok: boolean; detail: string };

/**
 * What a sandbox started before its controller was ready receives once it is (see
 * `StartOptions.late`): the proxy socket, the bottle CA and the rest of the caller's variables.
 */
export interface LateSetup {
  /** The egress proxy's unix socket; the sandbox's relay connects to it from now on. */
  proxySocketPath: string;
  /** PEM file of the bottle CA, copied into the sandbox before the agent's side starts. */
  caCertPath: string;
  /** More of the caller's variables (e.g. credential placeholders), over `spec.env`. */
  env?: Readonly<Record<string, string>>;
}

export interface StartOptions {
  /**
   * Start the sandbox now and hand it the proxy, CA and remaining variables when this settles:
   * bwrap, the launcher, the bridge and (with the probe) stage 2's filter and gate start while
   * the caller's controller starts, and the probe's checks that need neither run meanwhile; the
   * agent starts only once the setup arrived, with exactly its environment (without the probe,
   * stage 2 itself waits for it). The bridge reaches
   * the proxy through a relay socket of the sandbox's own (`spec.proxy.socketPath` and
   * `spec.caCertPath` are not used); a connection made before the setup waits for it. A rejected
   * promise (or a socket path that is not a unix socket) kills the sandbox: the agent never starts.
   */
  late?: Promise<LateSetup>;
  /**
   * The agent starts only once this settles too (the caller's last preparations, e.g. a service
   * of its controller that loads while the probe runs); a rejection stops it as a failed check
   * "controller ready". With the probe it is awaited after a passing report, before the "go";
   * without the probe, before the late setup is sent (so it needs `late` then: otherwise nothing
   * holds the agent back, and the sandbox refuses to start).
   */
  beforeAgent?: Promise<void>;
  /** How long the launcher waits for the late setup. Default 120 s. */
  lateTimeoutMs?: number;
  /** Scans the environment seen inside the sandbox for host credentials (e.g. egress-dlp's known secrets). */
  checkEnv?: EnvChecker;
  /** stdio of the agent (default inherit). */
  stdio?: "inherit" | "pipe";
  /** Host facts; resolved with `inspectHost` when omitted. */
  host?: HostFacts;
  /** Undeclared host the probe asks the proxy for (must be refused). */
  probeUndeclaredHost?: string;
  /** Waits this long for the probe report. Default 15 s. */
  probeTimeoutMs?: number;
}

export interface SandboxExit {
  /** The agent's exit code; 3 when the probe refused to start it; 128+n for a signal. */
  code: number;
  signal: NodeJS.Signals | null;
  probeRefused: boolean;
}

export interface SandboxProcess {
  /** Host pid of the sandbox's outermost process (bwrap, after setpriv's exec). */
  readonly pid: number;
  readonly plan: SandboxPlan;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Settles once the probe has answered (or immediately with ok and no checks when there is none). */
  readonly probe: Promise<ProbeReport>;
  readonly exited: Promise<SandboxExit>;
  /** Every host pid in the sandbox's process tree (outermost first). */
  pids(): number[];
  /** Sends a signal to every process of the tree (SIGSTOP / SIGCONT / SIGKILL …). */
  signalTree(signal: NodeJS.Signals): number;
  /** Kills the whole tree at once (SIGKILL) and waits for the exit. */
  kill(): Promise<SandboxExit>;
}

/**
 * A unix socket at `at` whose connections are piped to `target` (listening synchronously). A
 * connection made while `target` is a pending promise waits for it (its bytes stay buffered); a
 * rejected target closes it. Each side's end is passed on to the other (half-open): a client that
 * ends its request still gets the whole answer.
 */
function relaySocket(at: string, target: string | Promise<string>): net.Server {
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (typeof target !== "string") {
      client.on("error", () => client.destroy());
      target.then(
        (t) => {
          if (!client.destroyed) pipeTo(client, t);
        },
        () => client.destroy(),
      );
      return;
    }
    pipeTo(client, target);
  });
  server.listen(at);
  server.unref();
  return server;
}

function pipeTo(client: net.Socket, target: string): void {
  const upstream = net.connect({ path: target, allowHalfOpen: true });
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end);
  upstream.on("error", end);
  // A side closed both ways: the other ends once what it still has to write is flushed (a destroy
  // here would drop the tail of an answer still on its way).
  client.on("close", () => upstream.end());
  upstream.on("close", () => client.end());
}

/** Host pids of `root` and all its descendants, read from /proc (outermost first). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    // comm may hold spaces and parentheses: the fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The host's CA bundle (the system roots) as the head of ours, a bare newline when there is none. */
function systemCaHead(system: string): string {
  return system === "" ? "\n" : `${system.trimEnd()}\n`;
}

/** Copies the bottle CA alone into the run directory (ca.pem); returns it. */
function writeCaPem(dir: string, caCertPath: string): string {
  const ca = fs.readFileSync(caCertPath, "utf8");
  fs.writeFileSync(path.join(dir, "ca.pem"), ca, { mode: 0o444 });
  return ca;
}

/** Copies the bottle CA (and the system roots plus it) into the run directory. */
function writeCa(dir: string, caCertPath: string, host: HostFacts): void {
  const ca = writeCaPem(dir, caCertPath);
  const system = host.systemCaBundle ? fs.readFileSync(host.systemCaBundle, "utf8") : "";
  fs.writeFileSync(path.join(dir, "ca-bundle.pem"), systemCaHead(system) + ca, { mode: 0o444 });
}

/**
 * With a late setup: the bundle's head (the system roots, ~200 kB) is written while the setup is
 * awaited, so that only the bottle CA is left for after it (writing the whole bundle then took
 * 2 to 8 ms of the critical path on a loaded 2-core machine). The agent's side reads it only
 * after the setup arrived.
 */
/** An open file closed once: a second close could hit whatever reused its descriptor number. */
interface OpenFile {
  fd: number;
  closed: boolean;
}

function startCaBundle(dir: string, host: HostFacts): Promise<OpenFile> {
  // On the next turn of the event loop, with plain synchronous calls: not before the caller's next
  // step (its spawn mark), and without loading fs/promises for one read and one write.
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      let fd: number | undefined;
      try {
        const system = host.systemCaBundle ? fs.readFileSync(host.systemCaBundle, "utf8") : "";
        fd = fs.openSync(path.join(dir, "ca-bundle.pem"), "wx", 0o444);
        fs.writeFileSync(fd, systemCaHead(system));
        resolve({ fd, closed: false });
      } catch (error) {
        if (fd !== undefined) closeQuietly({ fd, closed: false });
        reject(error);
      }
    });
  });
}

function closeQuietly(file: OpenFile): void {
  if (file.closed) return;
  file.closed = true;
  try {
    fs.closeSync(file.fd);
  } catch {}
}

/** The rest of the late setup's CA files: the bottle CA alone, and at the end of the bundle. */
function finishCa(dir: string, caCertPath: string, bundle: OpenFile): void {
  fs.writeFileSync(bundle.fd, writeCaPem(dir, caCertPath));
}

function writeRunDir(
  plan: SandboxPlan,
  spec: SandboxSpec,
  host: HostFacts,
  options: StartOptions,
  startEnv: Record<string, string>,
): void {
  const dir = plan.runDir;
  const write = (name: string, data: string | Uint8Array) =>
    fs.writeFileSync(path.join(dir, name), data, { mode: 0o444 });
  if (plan.launcher === "perl") write("launcher.pl", LAUNCHER_PERL_SOURCE);
  else write("launcher.cjs", LAUNCHER_SOURCE);
  write("seccomp.bpf", seccompFilter());
  let config: string;
  try {
    config = launcherConfig({
      bwrap: host.bwrap,
      inner: plan.inner,
      filter: `${RUN_DIR}/seccomp.bpf`,
      probe: plan.probe,
      late: options.late !== undefined,
      lateTimeoutMs: options.lateTimeoutMs ?? 120_000,
      env: startEnv,
      // Without a late setup the final environment is the start one: the script only marks it applied.
      ...(plan.probe && options.late === undefined
        ? { script: envScript(startEnv, startEnv) }
        : {}),
      ...(plan.proxyPort === undefined
        ? {}
        : {
            bridge: { port: plan.proxyPort, socket: PROXY_SOCKET_IN_SANDBOX },
            proxy: {
              port: plan.proxyPort,
              undeclaredHost: options.probeUndeclaredHost ?? "bottle-probe.invalid",
            },
          }),
      tcpTargets: [
        { host: "1.1.1.1", port: 443 },
        { host: "8.8.8.8", port: 53 },
      ],
      dnsName: "example.com",
      writeProbes: plan.writeProbes,
    });
  } catch (cause) {
    throw new SandboxError("E_INVALID_SPEC", `env: ${(cause as Error).message}`, {
      cause,
      hint: "variable names are letters, digits and _ (not starting with a digit); values hold no NUL",
    });
  }
  write("launcher.conf", config);
  if (spec.caCertPath && options.late === undefined) writeCa(dir, spec.caCertPath, host);
  if (host.account.drop) {
    fs.chownSync(dir, host.account.uid, host.account.gid);
  }
}

/** Checks, as the agent's account, that the writable paths are writable (root callers only). */
function checkWritable(plan: SandboxPlan, spec: SandboxSpec): void {
  if (!plan.account.drop) return;
  for (const p of [spec.projectDir, ...(spec.readWrite ?? [])]) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (cause) {
      throw new SandboxError("E_INVALID_SPEC", `${p}: does not exist`, {
        cause,
        hint: "create the directory first",
      });
    }
    const { uid, gid } = plan.account;
    const ok =
      (st.uid === uid && (st.mode & 0o200) !== 0) ||
      (st.gid === gid && (st.mode & 0o020) !== 0) ||
      (st.mode & 0o002) !== 0;
    if (!ok) {
      throw new SandboxError(
        "E_ROOT_REFUSED",
        `${p}: not writable by ${plan.account.name} (uid ${uid}), the unprivileged account the agent runs as when bottle runs as root`,
        { hint: `chown -R ${plan.account.name}: ${p}  (or run bottle as a regular user)` },
      );
    }
  }
}

/**
 * Plans and starts a sandbox: stage 1 (bridge) and stage 2 (seccomp, probe, agent). The probe's
 * report is checked on the host (including `checkEnv`); on any failed check the agent never starts
 * and the sandbox exits with 3.
 */
export function startSandbox(spec: SandboxSpec, options: StartOptions = {}): SandboxProcess {
  const host = options.host ?? inspectHost(spec);
  const late = options.late;
  if (options.beforeAgent !== undefined && late === undefined && spec.probe === false) {
    throw new SandboxError(
      "E_INVALID_SPEC",
      "beforeAgent needs the probe or a late setup: nothing else holds the agent back",
      { hint: "pass late, or leave the probe on" },
    );
  }
  // Settles with the proxy socket once the late setup arrived and checked out.
  let lateSocket: Promise<string> | undefined;
  if (late) {
    lateSocket = late.then((setup) => {
      if (!fs.statSync(setup.proxySocketPath).isSocket()) {
        throw new SandboxError(
          "E_INVALID_SPEC",
          `proxySocketPath: ${setup.proxySocketPath} is not a unix socket`,
        );
      }
      return setup.proxySocketPath;
    });
    lateSocket.catch(() => {}); // handled below, once the child exists
  } else if (spec.proxy) {
    let st: fs.Stats;
    try {
      st = fs.statSync(spec.proxy.socketPath);
    } catch (cause) {
      throw new SandboxError(
        "E_INVALID_SPEC",
        `proxy.socketPath: ${spec.proxy.socketPath} does not exist`,
        { cause },
      );
    }
    if (!st.isSocket())
      throw new SandboxError(
        "E_INVALID_SPEC",
        `proxy.socketPath: ${spec.proxy.socketPath} is not a unix socket`,
      );
  }
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-sandbox-"));
  let plan: SandboxPlan;
  let startEnv: Record<string, string>;
  let relay: net.Server | undefined;
  let effective: SandboxSpec = spec;
  const cleanup = () => {
    relay?.close();
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  try {
    if (lateSocket) {
      // The proxy is not there yet: the bridge reaches it through a relay socket of our own.
      const relayPath = path.join(runDir, "proxy.sock");
      relay = relaySocket(relayPath, lateSocket);
      if (host.account.drop) fs.chownSync(relayPath, host.account.uid, host.account.gid);
      fs.chmodSync(relayPath, 0o600);
      effective = {
        ...spec,
        proxy: { ...(spec.proxy ?? {}), socketPath: relayPath },
        caCertPath: `${runDir}/ca.pem`, // written when the setup arrives
      };
    } else if (spec.proxy && host.account.drop) {
      // The controller's socket sits in a directory only root may enter, and bwrap resolves bind
      // sources as the agent's account: relay it through a socket that account owns.
      const relayPath = path.join(runDir, "proxy.sock");
      relay = relaySocket(relayPath, spec.proxy.socketPath);
      fs.chownSync(relayPath, host.account.uid, host.account.gid);
      fs.chmodSync(relayPath, 0o600);
      effective = { ...spec, proxy: { ...spec.proxy, socketPath: relayPath } };
    }
    plan = planSandbox(effective, host, runDir);
    checkWritable(plan, spec);
    // Stage 2's environment at its start. With a late setup the CA is not there yet: nothing
    // there may be told to load it before the final environment (the gate's script) is applied.
    startEnv = { ...plan.env };
    if (late) delete startEnv["NODE_EXTRA_CA_CERTS"];
    writeRunDir(plan, effective, host, options, startEnv);
  } catch (error) {
    cleanup();
    throw error;
  }
  const stdio: StdioOptions = [
    options.stdio === "pipe" ? "pipe" : "inherit",
    options.stdio === "pipe" ? "pipe" : "inherit",
    options.stdio === "pipe" ? "pipe" : "inherit",
    plan.probe || late ? "pipe" : "ignore",
  ];
  let child: ChildProcess;
  try {
    // The launcher starts with no variable of the agent's (PERL5OPT, NODE_OPTIONS, LANG … would
    // steer it): stage 2's environment is in its configuration. PATH finds setpriv and bwrap.
    const env = { PATH: plan.env["PATH"] || "/usr/bin:/bin" };
    child = spawn(plan.argv[0] as string, plan.argv.slice(1), { stdio, env, cwd: "/" });
  } catch (cause) {
    cleanup();
    throw new SandboxError("E_SPAWN", `cannot start the sandbox: ${(cause as Error).message}`, {
      cause,
    });
  }
  const pid = child.pid ?? -1;
  let probeRefused = false;

  // Late setup: the CA into the run directory, then the stage-2 environment to the launcher.
  // Anything wrong (the caller's promise rejected, a bad socket, a write failing): kill the tree.
  const beforeAgent = options.beforeAgent;
  beforeAgent?.catch(() => {}); // reported where it is awaited
  // A failure writing the bundle's head fails the setup, as a failed copy did.
  const bundle = late ? startCaBundle(runDir, host) : undefined;
  const setupSent: Promise<void> = late
    ? Promise.all([late, lateSocket, plan.probe ? undefined : beforeAgent, bundle])
        .then(([setup, , , file]) => {
          try {
            finishCa(runDir, setup.caCertPath, file as OpenFile);
          } finally {
            closeQuietly(file as OpenFile);
          }
          const env = planSandbox(
            { ...effective, env: { ...(spec.env ?? {}), ...(setup.env ?? {}) } },
            host,
            runDir,
          ).env;
          const channel = child.stdio[3] as unknown as NodeJS.WritableStream;
          channel.write(setupLine(env, envScript(startEnv, env)));
        })
        .catch(() => {
          void bundle?.then(closeQuietly, () => {});
          try {
            child.kill("SIGKILL");
          } catch {}
        })
    : Promise.resolve();

  const requiredChecks = [
    ...LAUNCHER_CHECKS,
    ...(plan.proxyPort === undefined ? [] : LAUNCHER_PROXY_CHECKS),
  ];
  const probe = new Promise<ProbeReport>((resolve) => {
    if (!plan.probe) {
      resolve({ ok: true, checks: [] });
      return;
    }
    const channel = child.stdio[3] as unknown as NodeJS.ReadWriteStream;
    // The report's bytes (UTF-8, decoded once whole: a character may straddle two chunks).
    let buf = Buffer.alloc(0);
    let reported = false;
    let done = false;
    const finish = (report: ProbeReport) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      probeRefused = !report.ok;
      try {
        channel.write(report.ok ? "go\n" : "stop\n");
        channel.end();
      } catch {}
      resolve(report);
    };
    let timer: NodeJS.Timeout | undefined;
    // The probe's time counts from the moment the agent's side could start.
    void setupSent.then(() => {
      if (done) return;
      timer = setTimeout(
        () =>
          finish({
            ok: false,
            checks: [{ name: "probe answered", ok: false, detail: "no report in time" }],
          }),
        options.probeTimeoutMs ?? 15_000,
      );
      timer.unref();
    });
    channel.on("error", () => {});
    channel.on("data", (chunk: Buffer) => {
      if (reported) return;
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 4 * 1024 * 1024) {
        finish({
          ok: false,
          checks: [{ name: "probe answered", ok: false, detail: "report too large" }],
        });
        return;
      }
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      reported = true;
      let parsed: ReturnType<typeof parseReport>;
      try {
        parsed = parseReport(buf.subarray(0, nl).toString("utf8"));
      } catch {
        finish({
          ok: false,
          checks: [{ name: "probe answered", ok: false, detail: "unreadable report" }],
        });
        return;
      }
      const { checks, env } = parsed;
      if (options.checkEnv) {
        let verdict: { ok: boolean; detail: string };
        try {
          verdict = options.checkEnv(env);
        } catch {
          verdict = { ok: false, detail: "the credential scan failed" };
        }
        checks.push({
          name: "no credential in the environment",
          ok: verdict.ok,
          detail: verdict.detail,
        });
      }
      // Every check of the probe must have reported: a launcher that skipped one fails closed.
      const missing = requiredChecks.filter((name) => !checks.some((c) => c.name === name));
      if (missing.length > 0) {
        checks.push({
          name: "probe complete",
          ok: false,
          detail: `missing: ${missing.join(", ")}`,
        });
      }
      const ok = checks.length > 0 && checks.every((c) => c.ok);
      if (!ok || beforeAgent === undefined) {
        finish({ ok, checks });
        return;
      }
      beforeAgent.then(
        () => finish({ ok, checks }),
        (error: unknown) =>
          finish({
            ok: false,
            checks: [
              ...checks,
              {
                name: "controller ready",
                ok: false,
                detail: error instanceof Error ? error.message : String(error),
              },
            ],
          }),
      );
    });
    child.on("exit", () =>
      finish({
        ok: false,
        checks: [
          {
            name: "probe answered",
            ok: false,
            detail: "the sandbox exited before the probe reported",
          },
        ],
      }),
    );
  });

  const exited = new Promise<SandboxExit>((resolve) => {
    child.on("error", () => {
      cleanup();
      resolve({ code: 125, signal: null, probeRefused: false });
    });
    child.on("exit", (code, signal) => {
      void bundle?.then(closeQuietly, () => {});
      cleanup();
      const n = signal ? (os.constants.signals[signal] ?? 15) : 0;
      const refused = probeRefused;
      resolve({
        code: refused ? PROBE_REFUSED_EXIT : signal ? 128 + n : (code ?? 1),
        signal,
        probeRefused: refused,
      });
    });
  });

  return {
    pid,
    plan,
    stdout: child.stdout,
    stderr: child.stderr,
    probe,
    exited,
    pids: () => (pid > 0 ? processTree(pid) : []),
    signalTree(signal) {
      let n = 0;
      for (const p of pid > 0 ? processTree(pid) : []) {
        try {
          process.kill(p, signal);
          n++;
        } catch {}
      }
      return n;
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch {}
      return exited;
    },
  };
}
