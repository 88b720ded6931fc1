import type { EnforcementAction } from "@bottlekit/budget-store";
import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";
import { type StoreFlags, withStore } from "../store.ts";
import { checkBottleName } from "./cutoff.ts";
import { formatTable, parseTime } from "./usage.ts";

export interface ActionsFlags extends StoreFlags {
  bottle?: string;
  since?: string;
  limit?: string;
}

function scopeText(a: EnforcementAction): string {
  return a.scope === undefined ? "-" : `${a.scope.scope} ${a.scope.key} ${a.scope.provider}`;
}

export function actionJson(a: EnforcementAction): Record<string, unknown> {
  return {
    id: a.id,
    at: new Date(a.at).toISOString(),
    bottle: a.bottle,
    action: a.action,
    scope: a.scope ?? null,
    by: a.by,
    reason: a.reason,
  };
}

/** `bottle actions [--bottle B] [--since T] [--limit N]`: the enforcement audit trail, oldest first. */
export async function runActions(
  flags: ActionsFlags,
  io: CliIo,
  now = Date.now(),
): Promise<number> {
  return withStore(flags, io, async (store) => {
    const filter: { bottle?: string; since?: number } = {};
    if (flags.bottle !== undefined) filter.bottle = checkBottleName(flags.bottle);
    if (flags.since !== undefined) filter.since = parseTime(flags.since, now, "--since");
    let limit = 100;
    if (flags.limit !== undefined) {
      limit = Number(flags.limit);
      if (!/^[0-9]{1,7}$/.test(flags.limit) || limit < 1) {
        throw new BottleError(
          "E_USAGE",
          `--limit ${JSON.stringify(flags.limit)} is not a count >= 1`,
          {
            hint: "e.g. --limit 20 (the newest 20 actions)",
          },
        );
      }
    }
    // One more than asked tells whether older entries were left out.
    const newest = await store.actions({ ...filter, limit: limit + 1 });
    const truncated = newest.length > limit;
    const shown = truncated ? newest.slice(1) : newest;
    if (flags.json === true) {
      writeJson(io, { truncated, actions: shown.map(actionJson) });
      return 0;
    }
    if (shown.length === 0) {
      io.stdout.write("no enforcement actions\n");
      return 0;
    }
    const rows = shown.map((a) => [
      new Date(a.at).toISOString().replace("T", " ").slice(0, 19),
      a.bottle,
      a.action,
      scopeText(a),
      a.by,
      a.reason,
    ]);
    io.stdout.write(formatTable(["at (UTC)", "bottle", "action", "scope", "by", "reason"], rows));
    if (truncated) {
      io.stderr.write(`note: showing the newest ${shown.length}; older ones: --limit or --since\n`);
    }
    return 0;
  });
}
