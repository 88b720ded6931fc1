import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isatty } from "node:tty";
import { openStore, type Store } from "@bottlekit/budget-store";
import { painter } from "@bottlekit/diagnostics";
import type { SessionSpec } from "@bottlekit/egress-proxy";
import { type LaunchEnv, materializeEnv } from "@bottlekit/manifest";
import {
  type HostFacts,
  inspectHost,
  isSandboxError,
  type LateSetup,
  type ProbeReport,
  planSandbox,
  RESERVED_ENV_NAMES,
  type SandboxProcess,
  type SandboxSpec,
  startSandbox,
  which,
} from "@bottlekit/sandbox";
import type { CliIo } from "../cli.ts";
import { BottleError } from "../errors.ts";
import { operatorName, resolveStoreUrl } from "../store.ts";
import { prepareAgent } from "./agents.ts";
import { type ControllerHandle, openController } from "./controller.ts";
import { credentialChecker, hostCredentials } from "./credentials.ts";
import { type PlannedBudget, planRun, type RunFlags, type RunPlan } from "./plan.ts";
import {
  forOtherSession,
  recordSessionAction,
  removeControlRequest,
  restoreForResume,
  type SessionAction,
  takeControlRequest,
} from "./session-audit.ts";
import {
  audit,
  CONTROL_SIGNALS,
  type FrozenRecord,
  readFrozen,
  removeSession,
  runsDir,
  type SessionRecord,
  writeFrozen,
  writeSession,
} from "./sessions.ts";
import { restoreSnapshot, snapshotProject } from "./snapshot.ts";

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_POLICY = 3;
const EXIT_INTERRUPTED = 130;

/** Project files kept read-only: git hooks and config, the project's bottlekit agents, direnv. */
const PROTECTED_IN_PROJECT = [".git/hooks", ".git/config", ".bottlekit", ".envrc"];

/**
 * Start-up phases of a run, as `performance` marks named `bottle-run:<phase>` (the bench reads
 * them: bench/startup.ts). A mark costs well under a microsecond.
 */
export const RUN_PHASES = [
  "start",
  "planned",
  "host",
  "agent-files",
  "sandbox-spawned",
  "controller",
  "store",
  "budgets",
  "probe",
  "exited",
  "cleaned",
] as const;

function mark(phase: (typeof RUN_PHASES)[number]): void {
  // detail: this process's CPU time so far (ms), so the bench can tell work from waiting.
  const cpu = process.cpuUsage();
  performance.mark(`bottle-run:${phase}`, { detail: (cpu.user + cpu.system) / 1000 });
}

/** How often the run checks the store for a budget cutoff (the 1 s bound is 4 polls). */
const POLL_MS = 250;

/** Facts for a plan that starts nothing (no account is created). */
function factsForDryRun(flags: RunFlags, env: NodeJS.ProcessEnv): HostFacts {
  try {
    return inspectHost({ runAs: flags.runAs, createAccount: false }, { env });
  } catch (error) {
    if (isSandboxError(error) && error.code === "E_ROOT_REFUSED") {
      const facts = inspectHost({ runAs: "nobody", createAccount: false }, { env });
      return {
        ...facts,
        account: {
          name: `${flags.runAs ?? "bottlekit-agent"} (created at first run)`,
          uid: -1,
          gid: -1,
          drop: true,
        },
      };
    }
    throw error;
  }
}

function budgetLine(b: PlannedBudget): string {
  return `${b.provider}=${b.tokens}${b.window === "none" ? "" : `/${b.window}`} (${b.source})`;
}

/** `--dry-run`: the binds, env names, routes, budgets and enforcement, as text or one JSON document. */
export function renderDryRun(plan: RunPlan, flags: RunFlags, io: CliIo): number {
  const host = factsForDryRun(flags, io.env);
  const sandbox = planSandbox(
    {
      command: plan.command,
      projectDir: plan.projectDir,
      readOnly: plan.readOnly.filter((p) => fs.existsSync(p)),
      readWrite: plan.readWrite,
      hidden: [...plan.hidden, plan.home],
      proxy: {
        socketPath: path.join(plan.home, "state", "egress-proxy", "sessions", "<session>.sock"),
      },
      caCertPath: "<bottle CA>",
      env: Object.fromEntries(plan.env.map((e) => [e.name, "x"])),
      hostEnv: io.env,
    },
    host,
    "<run dir>",
  );
  const doc = {
    agent: plan.agent,
    bottle: plan.bottle,
    kind: plan.kind,
    command: plan.command,
    projectDir: plan.projectDir,
    runAs: host.account.name,
    binds: sandbox.binds.map((b) => ({
      kind: b.kind,
      path: b.path,
      ...(b.source && b.source !== b.path ? { source: b.source } : {}),
    })),
    env: [
      ...Object.keys(sandbox.env)
        .filter((n) => !plan.env.some((e) => e.name === n))
        .map((name) => ({ name, source: "sandbox" })),
      ...plan.env,
      ...plan.credentials.map((name) => ({
        name,
        source: "placeholder (real value stays in the controller)",
      })),
    ],
    routes: plan.routeSummaries,
    llmHosts: plan.llmHosts,
    credentials: plan.credentials,
    budgets: plan.budgets,
    cutoff: plan.cutoff,
    execPolicyRules: plan.execPolicyRules,
    enforced: plan.enforced,
    notEnforced: plan.notEnforced,
    probe: [
      "not root",
      "socket(AF_UNIX) refused",
      "direct TCP fails",
      "DNS fails",
      "writes outside fail",
      "proxy answers and refuses an undeclared host",
      "no host credential in the env",
    ],
  };
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return EXIT_OK;
  }
  const out: string[] = [];
  out.push(
    `bottle run (dry run): ${plan.agent ?? "(no agent)"} in bottle ${plan.bottle}, ${plan.kind}`,
  );
  out.push(`  command   ${plan.command.join(" ")}`);
  out.push(`  project   ${plan.projectDir} (writable)`);
  out.push(`  runs as   ${host.account.name}`);
  out.push("binds:");
  for (const b of doc.binds)
    out.push(`  ${b.kind.padEnd(9)} ${b.path}${"source" in b ? ` <- ${b.source}` : ""}`);
  out.push("env (names only):");
  for (const e of doc.env) out.push(`  ${e.name}  <- ${e.source}`);
  out.push("routes:");
  if (plan.routeSummaries.length === 0) out.push("  (none: every host is refused)");
  for (const r of plan.routeSummaries) out.push(`  ${r}`);
  out.push("budgets:");
  if (plan.budgets.length === 0) out.push("  (none)");
  for (const b of plan.budgets) out.push(`  ${budgetLine(b)}`);
  out.push(`  on crossing: ${plan.cutoff}`);
  out.push("enforced:");
  for (const e of plan.enforced) out.push(`  + ${e}`);
  for (const e of plan.notEnforced) out.push(`  - ${e}`);
  io.stdout.write(`${out.join("\n")}\n`);
  return EXIT_OK;
}

function renderProbe(report: ProbeReport, io: CliIo): void {
  const paint = painter(io.stderr, io.env);
  const lines = report.checks.map(
    (c) =>
      `  ${c.ok ? paint("green", "✓") : paint("red", "✗")} ${c.name}${c.detail ? paint("dim", ` — ${c.detail}`) : ""}`,
  );
  io.stderr.write(`bottle: startup probe\n${lines.join("\n")}\n`);
}

async function askOnTty(
  io: CliIo,
): Promise<((name: string, prompt: string | undefined) => Promise<string>) | undefined> {
  // isatty(0), not process.stdin.isTTY: that getter loads Node's stream modules (~3 ms of every
  // run's start-up).
  if (!(io.stderr as { isTTY?: boolean }).isTTY || !isatty(0)) return undefined;
  const readline = await import("node:readline/promises");
  return async (name, prompt) => {
    const rl = readline.createInterface({
      input: process.stdin,
      output: io.stderr as NodeJS.WritableStream,
      terminal: true,
    });
    try {
      return await rl.question(`${prompt ?? name}: `);
    } finally {
      rl.close();
    }
  };
}

export interface RunOutcome {
  code: number;
  sessionId?: string;
  probe?: ProbeReport;
}

/**
 * `bottle run`: plan → sandbox spawned → controller session → the agent's side of the sandbox
 * starts (probe) while the store refuses a cut-off bottle and records the budgets → agent (its
 * "go" waits for both), then live enforcement until the agent exits.
 */
export async function executeRun(
  agentName: string | undefined,
  trailing: string[],
  flags: RunFlags,
  io: CliIo,
): Promise<RunOutcome> {
  mark("start");
  let frozen: FrozenRecord | undefined;
  const home0 = path.resolve(
    flags.home ?? (io.env["BOTTLEKIT_HOME"] || path.join(os.homedir(), ".bottlekit")),
  );
  if (flags.resume !== undefined) {
    frozen = readFrozen(home0, flags.resume);
    if (!frozen) {
      throw new BottleError("E_INVALID_INPUT", `--resume: no frozen session ${flags.resume}`, {
        hint: "bottle ps lists live sessions; frozen ones are in $BOTTLEKIT_HOME/state/runs/frozen/",
      });
    }
    agentName = frozen.agent ?? undefined;
    trailing = frozen.trailing;
    flags = {
      ...flags,
      cwd: frozen.projectDir,
      ...(flags.agentBin === undefined && frozen.agentBin !== undefined
        ? { agentBin: frozen.agentBin }
        : {}),
    };
  }
  const plan = planRun(agentName, trailing, flags, io.env);
  if (flags.dryRun) return { code: renderDryRun(plan, flags, io) };
  mark("planned");

  const host = inspectHost({ runAs: flags.runAs }, { env: io.env });
  mark("host");
  const sessionTag = crypto.randomBytes(6).toString("hex");
  const stderr = io.stderr;

  const launchEnv: LaunchEnv = await materializeEnv(plan.envEntries, {
    hostEnv: io.env,
    ...(await askOnTty(io).then((ask) => (ask ? { ask } : {}))),
  });

  // Per-session agent files (nothing here needs the controller).
  const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), `bottle-agent-${sessionTag}-`));
  let setup: ReturnType<typeof prepareAgent>;
  let command = [...plan.command];
  try {
    setup = prepareAgent(plan.kind, agentDir, {
      rules: plan.execPolicyRules,
      node: host.node,
      ...(plan.model === undefined ? {} : { model: plan.model }),
      ...(plan.credentials[0] === undefined ? {} : { credential: plan.credentials[0] }),
    });
    if (host.account.drop) {
      for (const p of [agentDir, ...setup.readWrite])
        chownTree(p, host.account.uid, host.account.gid);
    }
    if (plan.kind !== "command") {
      const bin = flags.agentBin ?? which(plan.command[0] as string, io.env);
      if (!bin) {
        throw new BottleError("E_INVALID_INPUT", `${plan.command[0]}: not found on PATH`, {
          hint: `install it, or pass --agent-bin <path>`,
        });
      }
      command = [bin, ...setup.args, ...plan.command.slice(1)];
    }
  } catch (error) {
    fs.rmSync(agentDir, { recursive: true, force: true });
    throw error;
  }
  const spec: SandboxSpec = {
    command,
    projectDir: plan.projectDir,
    readOnly: [
      ...new Set([
        ...plan.readOnly.filter((p) => fs.existsSync(p)),
        ...setup.readOnly,
        ...setup.readOnly.flatMap((p) => (fs.existsSync(p) ? installDirs(p) : [])),
        ...binaryDirs(command[0] as string),
      ]),
    ],
    readWrite: [...plan.readWrite, ...setup.readWrite],
    hidden: [...plan.hidden, plan.home],
    // Files the host runs or obeys after the agent is gone stay read-only.
    protect: [...PROTECTED_IN_PROJECT.map((p) => path.join(plan.projectDir, p)), ...setup.protect],
    mounts: setup.mounts,
    env: { ...launchEnv.expose(), ...setup.env },
    hostEnv: io.env,
    ...(flags.runAs === undefined ? {} : { runAs: flags.runAs }),
  };
  const checkEnv = credentialChecker(hostCredentials(io.env, plan.credentials));
  mark("agent-files");

  // The sandbox starts now, while the store and the controller start: bwrap, its launcher and the
  // bridge come up meanwhile, and the agent's side (filter, probe, agent) waits for `late`, which
  // is settled below once the controller session exists and the bottle is not cut off.
  let settleLate: { resolve(s: LateSetup): void; reject(e: Error): void } | undefined;
  const late = new Promise<LateSetup>((resolve, reject) => {
    settleLate = { resolve, reject };
  });
  // The agent itself starts only once the controller is wholly ready (see ControllerHandle.ready).
  let settleReady: { resolve(p: Promise<void>): void; reject(e: Error): void } | undefined;
  const controllerReady = new Promise<void>((resolve, reject) => {
    settleReady = { resolve, reject };
  });
  let started: SandboxProcess | undefined;
  const spawnSandbox = () => {
    started = startSandbox(spec, {
      host,
      checkEnv,
      probeUndeclaredHost: `bottle-probe-${sessionTag}.invalid`,
      late,
      beforeAgent: controllerReady,
    });
    mark("sandbox-spawned");
  };
  /** Stops a sandbox whose agent never started and removes what this run wrote so far. */
  const abandon = async () => {
    settleLate?.reject(new Error("bottle run did not start"));
    settleReady?.reject(new Error("bottle run did not start"));
    if (started) await started.exited;
    fs.rmSync(agentDir, { recursive: true, force: true });
  };
  // A resumed run restores the project first (the sandbox's binds are decided at its start).
  if (!frozen) {
    try {
      spawnSandbox();
    } catch (error) {
      await abandon();
      throw error;
    }
  }

  // Store: refuse a bottle that is cut off, record this run's budgets. BOTTLEKIT_STORE takes the
  // forms the operator commands take (a plain path is a SQLite file).
  const storeUrl = io.env["BOTTLEKIT_STORE"] ? resolveStoreUrl({}, io.env).url : undefined;
  const openTheStore = async (): Promise<Store> => {
    try {
      return await openStore(storeUrl, { home: plan.home });
    } catch (error) {
      throw new BottleError(
        "E_INTERNAL",
        `cannot open the budget store: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  let store: Store | undefined;
  /** False while `store` is the embedded controller's own (it closes it). */
  let ownStore = true;
  const closeStore = async () => {
    if (ownStore) await store?.close?.();
  };
  const startedAt = Date.now();
  if (frozen) {
    try {
      store = await openTheStore();
    } catch (error) {
      await abandon();
      throw error;
    }
    try {
      // Resuming lifts the bottle's freeze (audited in the store as a restore); a cutoff of another
      // policy stays for an operator's `bottle restore`, and the run is refused below.
      const lifted = await restoreForResume(store, {
        bottle: plan.bottle,
        sessionId: frozen.sessionId,
        by: operatorName(io.env),
        pending: plan.budgets.map((b) => ({
          provider: b.provider,
          tokens: b.tokens,
          source: b.source === "flag" ? "flag" : "manifest",
        })),
      });
      if (typeof lifted === "object") {
        // Nothing changed: the frozen session (snapshot, record) stays for a later resume.
        await abandon();
        await store.close?.();
        stderr.write(
          `bottle: bottle ${plan.bottle} stays frozen: ${lifted.spent}\nhint: raise it (bottle budget set …) or wait for its window to reset, then bottle run --resume ${frozen.sessionId}\n`,
        );
        return { code: EXIT_POLICY };
      }
      if (lifted) {
        restoreSnapshot(frozen.projectDir, frozen.snapshot);
        audit(plan.home, {
          at: new Date().toISOString(),
          sessionId: frozen.sessionId,
          bottle: plan.bottle,
          action: "resume",
          by: operatorName(io.env),
          reason: `resumed as a new session`,
        });
      }
      spawnSandbox();
    } catch (error) {
      await abandon();
      await store.close?.();
      throw error;
    }
  }
  // Controller session (routes, credentials as placeholders, CA).
  const sessionSpec: SessionSpec = {
    bottle: plan.bottle,
    ...(plan.agent === null ? {} : { agent: plan.agent }),
    routes: plan.routes,
    credentials: plan.credentials.map((name) => ({ name })),
    // The provider's API hosts go through the controller's LLM pipeline (metered, key injected).
    llmHosts: plan.llmHosts,
    budgets: plan.budgets,
  };
  let controller: ControllerHandle;
  try {
    controller = await openController(plan.home, sessionSpec, {
      env: io.env,
      ...(storeUrl === undefined ? {} : { store: storeUrl }),
    });
  } catch (error) {
    await abandon();
    await store?.close?.();
    throw error;
  }
  mark("controller");
  const sessionId = controller.registration.sessionId;

  // The agent's side of the sandbox may start: the proxy, the CA and the placeholders.
  const regEnv = Object.fromEntries(
    Object.entries(controller.registration.env).filter(([n]) => !RESERVED_ENV_NAMES.has(n)),
  );
  settleLate?.resolve({
    proxySocketPath: controller.registration.proxySocketPath,
    caCertPath: controller.registration.caCertPath,
    // The agent's own settings win over the controller's variables, as they did in one spec.
    env: { ...regEnv, ...setup.env },
  });
  // While it starts (stage 2, the probe): a bottle that is cut off is refused and this run's
  // budgets are defined, after the controller started (an embedded one reloads the home's
  // manifest budgets as a whole when it starts), in the embedded controller's store (the one its
  // gateway enforces budgets from, which a gateway config may name; not opened a second time),
  // else the one $BOTTLEKIT_STORE or the home names. The agent's "go" waits for it.
  const admitted = (async (): Promise<Awaited<ReturnType<Store["cutoffState"]>>> => {
    if (store === undefined && controller.store !== undefined) {
      store = controller.store;
      ownStore = false;
    }
    store ??= await openTheStore();
    mark("store");
    const state = await store.cutoffState(plan.bottle);
    if (state) return state;
    for (const b of plan.budgets) {
      await store.defineBudget({
        scope: "bottle",
        key: plan.bottle,
        provider: b.provider,
        tokens: b.tokens,
        source: b.source === "flag" ? "flag" : "manifest",
        ...(b.window === "none" ? {} : { window: b.window as never }),
        policy: plan.cutoff,
      } as Parameters<Store["defineBudget"]>[0]);
    }
    mark("budgets");
    return undefined;
  })();
  // Whatever the controller still loads, it loads while the probe runs: on the next turn of the
  // event loop, once the set-up above is written to the sandbox.
  const c = controller;
  settleReady?.resolve(
    Promise.all([
      admitted.then((state) => {
        if (state) throw new Error(`bottle ${plan.bottle} is cut off`);
      }),
      new Promise<void>((r) => setImmediate(r)).then(() => c.ready()),
    ]).then(() => {}),
  );
  // While the agent's side starts in the sandbox: the credential scanner its report is checked by.
  checkEnv.prepare();
  /** Stops a sandbox whose agent never got its "go" and closes what this run opened. */
  const refuse = async () => {
    await started?.kill();
    await abandon();
    await controller.close().catch(() => {});
    await closeStore();
  };
  let state: Awaited<typeof admitted>;
  try {
    state = await admitted;
  } catch (error) {
    await refuse();
    throw error;
  }
  if (state) {
    await refuse();
    stderr.write(
      `bottle: bottle ${plan.bottle} is cut off (${state.policy}, since ${new Date(state.since).toISOString()}: ${state.reason})\nhint: bottle restore ${plan.bottle} --reason <why>\n`,
    );
    return { code: EXIT_POLICY };
  }
  if (!started || !store) {
    await refuse();
    throw new BottleError("E_INTERNAL", "the sandbox did not start");
  }
  const sandbox: SandboxProcess = started;

  const record: SessionRecord = {
    sessionId,
    bottle: plan.bottle,
    agent: plan.agent,
    kind: plan.kind,
    pid: process.pid,
    sandboxPid: sandbox.pid,
    startedAt: new Date(startedAt).toISOString(),
    projectDir: plan.projectDir,
    command: plan.command,
    budgets: plan.budgets,
    cutoff: plan.cutoff,
    controller: controller.mode,
    state: "running",
  };
  writeSession(plan.home, record);

  let stoppedBy: "policy" | "interrupt" | undefined;
  /**
   * Records an operator's action on this session in the store's audit trail (a budget's or a
   * `bottle cutoff` action is already there). Never blocks the action itself.
   */
  const recordOperator = async (action: SessionAction, by: string, reason: string) => {
    try {
      const r = await recordSessionAction(store as Store, {
        bottle: plan.bottle,
        sessionId,
        action,
        by,
        reason,
      });
      if (r === "already-cut-off") {
        stderr.write(
          `bottle: bottle ${plan.bottle} is already cut off in the store; its cutoff is kept and this ${action} is logged in ${path.join(runsDir(plan.home), "audit.jsonl")} only\n`,
        );
      }
    } catch (error) {
      stderr.write(
        `bottle: could not record the ${action} in the budget store: ${(error as Error).message}\n`,
      );
    }
  };
  const apply = async (
    action: "cutoff" | "freeze" | "kill" | "stop",
    by: string,
    reason: string,
    t0: number,
    operator = false,
  ) => {
    if (stoppedBy) return;
    if (action === "cutoff") {
      if (record.state === "cut-off") return;
      await controller.api.cutoff({ sessionId });
      record.state = "cut-off";
      writeSession(plan.home, record);
      audit(plan.home, {
        at: new Date().toISOString(),
        sessionId,
        bottle: plan.bottle,
        action,
        by,
        reason,
        latencyMs: Date.now() - t0,
      });
      stderr.write(
        `bottle: session ${sessionId} cut off (${reason}); the agent keeps running, its egress is refused\n`,
      );
      if (operator) await recordOperator("cutoff", by, reason);
      return;
    }
    stoppedBy = "policy";
    if (action === "freeze") {
      record.state = "freezing";
      sandbox.signalTree("SIGSTOP");
      const latencyMs = Date.now() - t0;
      const snapshot = snapshotProject(
        plan.projectDir,
        sessionId,
        path.join(runsDir(plan.home), "frozen"),
      );
      writeFrozen(plan.home, {
        sessionId,
        bottle: plan.bottle,
        agent: plan.agent,
        command: plan.command,
        trailing,
        ...(flags.agentBin === undefined ? {} : { agentBin: flags.agentBin }),
        projectDir: plan.projectDir,
        frozenAt: new Date().toISOString(),
        snapshot,
      });
      await sandbox.kill();
      if (operator) await recordOperator("freeze", by, reason);
      audit(plan.home, {
        at: new Date().toISOString(),
        sessionId,
        bottle: plan.bottle,
        action,
        by,
        reason,
        latencyMs,
      });
      stderr.write(
        `bottle: session ${sessionId} frozen (${reason}); resume with: bottle run --resume ${sessionId}\n`,
      );
      return;
    }
    record.state = "stopping";
    await sandbox.kill();
    if (operator) await recordOperator("stop", by, reason);
    audit(plan.home, {
      at: new Date().toISOString(),
      sessionId,
      bottle: plan.bottle,
      action,
      by,
      reason,
      latencyMs: Date.now() - t0,
    });
    stderr.write(
      `bottle: session ${sessionId} ${action === "kill" ? "killed" : "stopped"} (${reason})\n`,
    );
  };

  // The operator who asked (`bottle stop|freeze` leaves a request), else the signal's name.
  const operatorAction = (
    action: SessionAction,
    sig: NodeJS.Signals,
    reason: string,
    t0: number,
  ): void => {
    const req = takeControlRequest(plan.home, sessionId, action);
    const by = req?.by ?? `signal ${sig}`;
    void apply(action, by, reason, t0, req?.recorded !== true);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    const t0 = Date.now();
    if (sig === CONTROL_SIGNALS.freeze) operatorAction("freeze", sig, "bottle freeze", t0);
    else if (sig === CONTROL_SIGNALS.cutoff)
      operatorAction("cutoff", sig, "bottle stop --cutoff", t0);
    else if (sig === "SIGINT") {
      stoppedBy = "interrupt";
      void sandbox.kill();
    } else operatorAction("stop", sig, `bottle stop (${sig})`, t0);
  };
  const signals: NodeJS.Signals[] = [
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    CONTROL_SIGNALS.freeze,
    CONTROL_SIGNALS.cutoff,
  ];
  for (const s of signals) process.on(s, onSignal);

  // Budget crossings (and `bottle cutoff <bottle> --policy …`) land in the store: poll it.
  const timer = setInterval(() => {
    const t0 = Date.now();
    void store
      ?.cutoffState(plan.bottle)
      .then((s) => {
        if (!s || s.since < startedAt - 1000 || forOtherSession(s.reason, sessionId)) return;
        const action = s.policy === "freeze" ? "freeze" : s.policy === "kill" ? "kill" : "cutoff";
        return apply(action, s.by, s.reason, t0);
      })
      .catch(() => {});
  }, POLL_MS);
  timer.unref();

  const probe = await sandbox.probe;
  mark("probe");
  renderProbe(probe, io);
  if (!probe.ok) {
    audit(plan.home, {
      at: new Date().toISOString(),
      sessionId,
      bottle: plan.bottle,
      action: "probe-failed",
      by: "bottle",
      reason: probe.checks
        .filter((c) => !c.ok)
        .map((c) => c.name)
        .join("; "),
    });
    stderr.write("bottle: the sandbox failed its startup probe; the agent was not started\n");
  }
  const exit = await sandbox.exited;
  mark("exited");
  clearInterval(timer);
  for (const s of signals) process.off(s, onSignal);
  await cleanup();
  mark("cleaned");
  if (!probe.ok) return { code: EXIT_POLICY, sessionId, probe };
  if (stoppedBy === "policy") return { code: EXIT_POLICY, sessionId, probe };
  if (stoppedBy === "interrupt") return { code: EXIT_INTERRUPTED, sessionId, probe };
  return { code: exit.code, sessionId, probe };

  async function cleanup(): Promise<void> {
    removeSession(plan.home, sessionId);
    removeControlRequest(plan.home, sessionId);
    fs.rmSync(agentDir, { recursive: true, force: true });
    try {
      await controller.close();
    } catch {}
    await closeStore();
  }
}

/** Directories a program outside the read-only system needs (e.g. a CLI under /tmp or a home). */
const HIDDEN_ROOTS = ["/tmp", "/home", "/root", "/run"];

function isHidden(p: string): boolean {
  return HIDDEN_ROOTS.some((h) => p.startsWith(`${h}/`));
}

/**
 * What must stay visible, read-only, for a program or package that lives where the sandbox
 * mounts an empty tmpfs (/tmp, homes, /run): the path itself, and the node_modules tree it loads
 * from. Inside a node_modules tree (npm, pnpm, a global prefix under a home) the outermost
 * node_modules holds every dependency and platform package (pnpm symlinks into its .pnpm);
 * a workspace package outside one (a clone under /tmp) loads from the topmost node_modules above
 * it. bottlekit's own install and the agent's are not secrets; the rest of the home stays hidden.
 */
export function installDirs(p: string): string[] {
  if (!path.isAbsolute(p)) return [];
  const out = new Set<string>();
  for (const candidate of [p, fs.realpathSync(p)]) {
    if (!isHidden(candidate)) continue;
    const parts = candidate.split(path.sep);
    const nm = parts.indexOf("node_modules");
    if (nm > 0) {
      out.add(parts.slice(0, nm + 1).join(path.sep));
      continue;
    }
    // A workspace package: its whole directory (a bin's `../dist`), and the workspace packages
    // its node_modules links to, transitively (pnpm links them into other folders of the clone).
    const own = packageRoot(candidate);
    if (own === undefined) {
      out.add(fs.statSync(candidate).isDirectory() ? candidate : path.dirname(candidate));
    } else {
      out.add(own);
      for (const dep of workspaceLinks(own)) out.add(dep);
    }
    let topmost: string | undefined;
    for (let d = path.dirname(candidate); isHidden(`${d}/`) && d !== "/"; d = path.dirname(d)) {
      if (fs.existsSync(path.join(d, "node_modules"))) topmost = path.join(d, "node_modules");
    }
    if (topmost !== undefined) out.add(topmost);
  }
  return [...out];
}

/** The nearest directory at or above `p` with a package.json, within the hidden root. */
function packageRoot(p: string): string | undefined {
  for (let d = p; isHidden(`${d}/`) && d !== "/"; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, "package.json"))) return d;
  }
  return undefined;
}

/** At most this many linked workspace packages are followed (a guard, not a limit in practice). */
const MAX_WORKSPACE_LINKS = 256;

/**
 * The real directories of the packages `root`'s node_modules links to that are not inside a
 * node_modules tree themselves (workspace packages), and theirs, transitively.
 */
function workspaceLinks(root: string): string[] {
  const found = new Set<string>();
  const queue = [root];
  for (let pkg = queue.shift(); pkg !== undefined; pkg = queue.shift()) {
    const nm = path.join(pkg, "node_modules");
    let names: string[];
    try {
      names = fs.readdirSync(nm);
    } catch {
      continue;
    }
    const links = names.flatMap((n) => {
      if (!n.startsWith("@")) return [n];
      try {
        return fs.readdirSync(path.join(nm, n)).map((m) => `${n}/${m}`);
      } catch {
        return [];
      }
    });
    for (const name of links) {
      const link = path.join(nm, name);
      let real: string;
      try {
        if (!fs.lstatSync(link).isSymbolicLink()) continue;
        real = fs.realpathSync(link);
      } catch {
        continue;
      }
      if (!isHidden(real) || real.split(path.sep).includes("node_modules")) continue;
      if (real === root || found.has(real) || found.size >= MAX_WORKSPACE_LINKS) continue;
      found.add(real);
      queue.push(real);
    }
  }
  return [...found];
}

function binaryDirs(program: string): string[] {
  return installDirs(program);
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.chownSync(p, uid, gid);
  if (fs.statSync(p).isDirectory())
    for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid, gid);
}

export const RUN_EXIT = {
  ok: EXIT_OK,
  failure: EXIT_FAILURE,
  usage: EXIT_USAGE,
  policy: EXIT_POLICY,
  interrupted: EXIT_INTERRUPTED,
} as const;
