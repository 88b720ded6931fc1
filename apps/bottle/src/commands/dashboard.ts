import type { CutoffPolicy, Store } from "@bottlekit/budget-store";
import type { CliIo } from "../cli.ts";
import { colorEnabled } from "../color.ts";
import { BottleError } from "../errors.ts";
import { operatorName, reportError, type StoreFlags, withStore } from "../store.ts";

export interface DashboardFlags extends StoreFlags {
  poll?: string;
}

/** The terminal the dashboard draws on: a TTY stdin and stdout (real ones, or a test's). */
export interface DashboardIo extends CliIo {
  stdin?: NodeJS.ReadStream;
}

const NO_CONTROL =
  "no control socket in this bottlekit yet, so the live session is not signalled; the gateway refuses the bottle's next call";

/** Store-backed actions the dashboard's keys call. */
export function storeActions(store: Store, env: NodeJS.ProcessEnv) {
  const by = operatorName(env);
  return {
    async cutOff(bottle: string, policy: CutoffPolicy): Promise<string> {
      const s = await store.cutOff(bottle, { by, reason: `dashboard: ${policy}`, policy });
      const what = policy === "cutoff" ? "cut off" : policy === "freeze" ? "frozen" : "killed";
      return `${bottle} ${what} (${s.policy}) by ${s.by}${policy === "cutoff" ? "" : `; ${NO_CONTROL}`}`;
    },
    async restore(bottle: string): Promise<string> {
      const ok = await store.restore(bottle, { by, reason: "dashboard: restore" });
      return ok ? `${bottle} restored by ${by}` : `${bottle} is not cut off; nothing changed`;
    },
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
    const [{ render }, { createElement }, { Dashboard }, { DashboardModel }] = await Promise.all([
      import("ink"),
      import("react"),
      import("../dashboard/app.ts"),
      import("../dashboard/model.ts"),
    ]);
    const model = new DashboardModel(store);
    let code = 0;
    // The alternate screen, as full-screen tools do: the shell's scrollback is left as it was.
    stdout.write("\u001b[?1049h\u001b[H");
    try {
      const app = render(
        createElement(Dashboard, {
          load: () => model.refresh(),
          actions: storeActions(store, io.env),
          storeLabel: resolved.display,
          color: colorEnabled(stdout, io.env),
          pollMs,
          liveControl: false,
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
    }
    return code;
  });
}
