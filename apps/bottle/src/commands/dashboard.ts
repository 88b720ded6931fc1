import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { CutoffPolicy, Store } from "@bottlekit/budget-store";
import type { CliIo } from "../cli.ts";
import { colorEnabled } from "../color.ts";
import type { DashboardModel } from "../dashboard/model.ts";
import { BottleError } from "../errors.ts";
import { operatorName, reportError, type StoreFlags, withStore } from "../store.ts";

export interface DashboardFlags extends StoreFlags {
  poll?: string;
}

/** The terminal the dashboard draws on: a TTY stdin and stdout (real ones, or a test's). */
export interface DashboardIo extends CliIo {
  stdin?: NodeJS.ReadStream;
}

const NO_CONTROL = "no control socket reachable, so live sessions are not signalled";

/** What the dashboard uses of the egress proxy's control socket. */
export interface LiveControl {
  list(): Promise<Array<{ bottle: string }>>;
  cutoff(target: { bottle: string }): Promise<number>;
  restore(target: { bottle: string }): Promise<number>;
  close(): void;
}

/**
 * Connects to the controller's control socket (`<home>/state/egress-proxy.sock`) when one is
 * listening; undefined when there is none or it does not answer within `timeoutMs`.
 */
export async function connectLiveControl(
  home: string,
  timeoutMs = 2_000,
): Promise<LiveControl | undefined> {
  const { connectControl, defaultControlSocketPath } = await import("@bottlekit/egress-proxy");
  const path = defaultControlSocketPath(join(home, "state"));
  if (!existsSync(path)) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const client = await Promise.race([
      connectControl(path),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      }),
    ]);
    if (client === undefined) return undefined;
    await client.list();
    return client;
  } catch {
    return undefined;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Live `bottle run` processes on this host (their session records under `<home>/state/runs`). */
export interface LocalRuns {
  list(): Array<{ sessionId: string; bottle: string; pid: number }>;
  /** Signals one run: it applies the action to its process tree and audits it. */
  signal(pid: number, action: "stop" | "freeze" | "cutoff"): void;
}

/** The runs recorded in `home` (what `bottle ps` lists), signalled as `bottle stop|freeze` do. */
export async function localRuns(home: string, by = "operator"): Promise<LocalRuns> {
  const [{ CONTROL_SIGNALS, listSessions }, { writeControlRequest }] = await Promise.all([
    import("../run/sessions.ts"),
    import("../run/session-audit.ts"),
  ]);
  return {
    list: () => listSessions(home),
    signal: (pid, action) => {
      const run = listSessions(home).find((s) => s.pid === pid);
      // The dashboard recorded the bottle's cutoff in the store already: the run only applies it.
      if (run !== undefined)
        writeControlRequest(home, run.sessionId, { action, by, at: Date.now(), recorded: true });
      process.kill(pid, CONTROL_SIGNALS[action]);
    },
  };
}

const RUN_ACTION = { cutoff: "cutoff", freeze: "freeze", kill: "stop" } as const;

function sessionsText(n: number): string {
  return `${n} live session${n === 1 ? "" : "s"}`;
}

/**
 * The actions behind the dashboard's keys: the store records the cutoff (the gateway refuses
 * the bottle's next call); with a control socket the bottle's live sessions lose their routes at
 * once; and each live `bottle run` of the bottle is signalled to apply the policy to its process
 * tree (cutoff, freeze = snapshot then stop, kill = stop), as `bottle stop|freeze` do.
 */
export function storeActions(
  store: Store,
  env: NodeJS.ProcessEnv,
  control?: LiveControl,
  runs?: LocalRuns,
) {
  const by = operatorName(env);
  return {
    async cutOff(bottle: string, policy: CutoffPolicy): Promise<string> {
      const s = await store.cutOff(bottle, { by, reason: `dashboard: ${policy}`, policy });
      const what = policy === "cutoff" ? "cut off" : policy === "freeze" ? "frozen" : "killed";
      const notes: string[] = [];
      if (control !== undefined) {
        const n = await control.cutoff({ bottle });
        notes.push(`${sessionsText(n)}: routes dropped`);
      }
      const mine = (runs?.list() ?? []).filter((r) => r.bottle === bottle);
      let signalled = 0;
      for (const r of mine) {
        try {
          runs?.signal(r.pid, RUN_ACTION[policy]);
          signalled++;
        } catch {
          // the run ended meanwhile
        }
      }
      if (signalled > 0) {
        notes.push(`${signalled} run${signalled === 1 ? "" : "s"} told to ${RUN_ACTION[policy]}`);
      } else if (policy !== "cutoff" && control !== undefined) {
        notes.push(
          "no local run signalled: a bottle run reading this store applies it within 1 s; any other session keeps running without egress",
        );
      }
      if (control === undefined && runs === undefined && policy !== "cutoff")
        notes.push(NO_CONTROL);
      return `${bottle} ${what} (${s.policy}) by ${s.by}${notes.length ? `; ${notes.join("; ")}` : ""}`;
    },
    async restore(bottle: string): Promise<string> {
      const ok = await store.restore(bottle, { by, reason: "dashboard: restore" });
      const n = control === undefined ? 0 : await control.restore({ bottle });
      const live = control === undefined ? "" : `; ${sessionsText(n)} restored`;
      return ok
        ? `${bottle} restored by ${by}${live}`
        : `${bottle} is not cut off in the store; nothing changed${live}`;
    },
  };
}

/** The dashboard's poll: live sessions (when there is a control socket), then the store. */
export function dashboardLoader(model: DashboardModel, control?: LiveControl, runs?: LocalRuns) {
  return async () => {
    const fromSocket =
      control === undefined ? undefined : await control.list().catch(() => undefined);
    let fromRuns: Array<{ sessionId: string; bottle: string }> | undefined;
    try {
      fromRuns = runs?.list();
    } catch {
      fromRuns = undefined;
    }
    if (fromSocket === undefined && fromRuns === undefined) return model.refresh();
    // One entry per session: a run registered with the controller is listed by both.
    const seen = new Set<string>();
    const sessions: Array<{ bottle: string }> = [];
    for (const s of [...(fromSocket ?? []), ...(fromRuns ?? [])]) {
      const id = (s as { sessionId?: unknown }).sessionId;
      if (typeof id === "string") {
        if (seen.has(id)) continue;
        seen.add(id);
      }
      sessions.push({ bottle: s.bottle });
    }
    return model.refresh(sessions);
  };
}

/**
 * `bottle dashboard`: the live table. Refuses without a terminal (exit 2) and points to
 * `bottle usage`, which prints the same figures for scripts.
 */
export async function runDashboard(flags: DashboardFlags, io: DashboardIo): Promise<number> {
  const stdin = io.stdin ?? process.stdin;
  const stdout = io.stdout as NodeJS.WriteStream;
  if (stdin.isTTY !== true || stdout.isTTY !== true) {
    return reportError(
      new BottleError(
        "E_USAGE",
        "the dashboard needs a terminal (stdin and stdout must be a TTY)",
        {
          hint: "for scripts and pipes use `bottle usage --by bottle --json` and `bottle actions --json`",
        },
      ),
      io,
      false,
    );
  }
  let pollMs = 500;
  if (flags.poll !== undefined) {
    pollMs = Number(flags.poll);
    if (!/^[0-9]{2,5}$/.test(flags.poll) || pollMs < 50 || pollMs > 60_000) {
      return reportError(
        new BottleError("E_USAGE", `--poll ${JSON.stringify(flags.poll)} is not 50..60000 ms`, {
          hint: "e.g. --poll 500 (the default)",
        }),
        io,
        false,
      );
    }
  }
  return withStore(flags, io, async (store, resolved) => {
    // ink renders only the last frame when it thinks it runs in CI (CI or CONTINUOUS_INTEGRATION
    // set, read once when ink loads). The dashboard runs only on a terminal (checked above), so
    // a CI variable inherited by an interactive shell (or a tmux server started from CI) must not
    // blank the screen until exit.
    for (const name of ["CI", "CONTINUOUS_INTEGRATION"]) {
      if (process.env[name] !== undefined) process.env[name] = "false";
    }
    const [{ render }, { createElement }, { Dashboard }, { DashboardModel }] = await Promise.all([
      import("ink"),
      import("react"),
      import("../dashboard/app.ts"),
      import("../dashboard/model.ts"),
    ]);
    const model = new DashboardModel(store);
    const envHome = io.env["BOTTLEKIT_HOME"];
    const home =
      flags.home ??
      (envHome !== undefined && envHome !== "" ? envHome : join(homedir(), ".bottlekit"));
    const control = await connectLiveControl(home);
    const runs = await localRuns(home, operatorName(io.env));
    let code = 0;
    // The alternate screen, as full-screen tools do: the shell's scrollback is left as it was.
    stdout.write("\u001b[?1049h\u001b[H");
    try {
      const app = render(
        createElement(Dashboard, {
          load: dashboardLoader(model, control, runs),
          actions: storeActions(store, io.env, control, runs),
          storeLabel: resolved.display,
          color: colorEnabled(stdout, io.env),
          pollMs,
          liveControl: true,
          onExit: (c: number) => {
            code = c;
          },
        }),
        {
          stdout,
          stdin,
          stderr: io.stderr as NodeJS.WriteStream,
          exitOnCtrlC: false,
          patchConsole: false,
        },
      );
      await app.waitUntilExit();
    } finally {
      stdout.write("\u001b[?1049l");
      control?.close();
    }
    return code;
  });
}
