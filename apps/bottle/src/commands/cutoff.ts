import type { CutoffState } from "@bottlekit/budget-store";
import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";
import { operatorName, type StoreFlags, withStore } from "../store.ts";
import { POLICIES } from "./budget.ts";

export interface CutoffFlags extends StoreFlags {
  reason?: string;
  policy?: string;
}

/** A bottle name as the store accepts it, or a usage error (checked before the store opens). */
export function checkBottleName(bottle: string): string {
  if (!/^[A-Za-z0-9][\w.-]{0,255}$/.test(bottle)) {
    throw new BottleError("E_USAGE", `${JSON.stringify(bottle)} is not a bottle name`, {
      hint: "bottle names are letters, digits, '.', '_' and '-'; `bottle usage --by bottle` lists them",
    });
  }
  return bottle;
}

/** The reason an operator gives; required, one line, printable. */
export function checkReason(reason: string | undefined, command: string): string {
  const r = reason?.trim() ?? "";
  if (r === "" || /[\u0000-\u001f\u007f]/.test(r) || r.length > 500) {
    throw new BottleError(
      "E_USAGE",
      `${command}: --reason must be one printable line (1-500 characters)`,
      {
        hint: `e.g. bottle ${command} dev --reason "runaway loop"`,
      },
    );
  }
  return r;
}

export function cutoffJson(s: CutoffState): Record<string, unknown> {
  return {
    bottle: s.bottle,
    policy: s.policy,
    since: new Date(s.since).toISOString(),
    until: s.until === undefined ? null : new Date(s.until).toISOString(),
    scope: s.scope ?? null,
    by: s.by,
    reason: s.reason,
  };
}

/**
 * `bottle cutoff <bottle> --reason R [--policy cutoff|freeze|kill]`: records an operator cutoff
 * in the store. The gateway refuses the bottle's next call (429 cut-off) whatever its budget.
 */
export async function runCutoff(bottle: string, flags: CutoffFlags, io: CliIo): Promise<number> {
  return withStore(flags, io, async (store) => {
    const name = checkBottleName(bottle);
    const reason = checkReason(flags.reason, "cutoff");
    const policy =
      flags.policy === undefined
        ? undefined
        : (POLICIES.find((p) => p === flags.policy) ??
          (() => {
            throw new BottleError(
              "E_USAGE",
              `--policy ${JSON.stringify(flags.policy)} is not one of ${POLICIES.join(", ")}`,
              {
                hint: "cutoff refuses the bottle's calls; freeze and kill also stop a live session",
              },
            );
          })());
    const before = await store.cutoffState(name);
    const state = await store.cutOff(name, {
      by: operatorName(io.env),
      reason,
      ...(policy !== undefined ? { policy } : {}),
    });
    if (flags.json === true) {
      writeJson(io, { cutoff: cutoffJson(state), wasCutOff: before !== undefined });
    } else {
      io.stdout.write(
        `${name}: cut off (${state.policy}) by ${state.by}: ${state.reason}${before ? " (it was already cut off)" : ""}\n`,
      );
      io.stdout.write(
        `its next call through the gateway is refused; lift it with: bottle restore ${name} --reason …\n`,
      );
    }
    return 0;
  });
}
