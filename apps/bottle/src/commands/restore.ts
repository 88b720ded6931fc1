import type { CliIo } from "../cli.ts";
import { writeJson } from "../context.ts";
import { operatorName, type StoreFlags, withStore } from "../store.ts";
import { checkBottleName, checkReason, cutoffJson } from "./cutoff.ts";

export interface RestoreFlags extends StoreFlags {
  reason?: string;
}

/**
 * `bottle restore <bottle> --reason R`: lifts a cutoff (operator's or a spent budget's). Exit 1
 * when the bottle was not cut off, so a mistyped name does not pass silently.
 */
export async function runRestore(bottle: string, flags: RestoreFlags, io: CliIo): Promise<number> {
  return withStore(flags, io, async (store) => {
    const name = checkBottleName(bottle);
    const reason = checkReason(flags.reason, "restore");
    const before = await store.cutoffState(name);
    const restored = await store.restore(name, { by: operatorName(io.env), reason });
    if (flags.json === true) {
      writeJson(io, {
        bottle: name,
        restored,
        previous: before === undefined ? null : cutoffJson(before),
      });
    } else if (restored) {
      io.stdout.write(
        `${name}: restored (was ${before?.policy ?? "cut off"} since ${before ? new Date(before.since).toISOString() : "?"})\n`,
      );
    }
    if (!restored) {
      io.stderr.write(`bottle: ${name} is not cut off; nothing changed\n`);
      io.stderr.write(`hint: \`bottle actions --bottle ${name}\` shows its enforcement history\n`);
      return 1;
    }
    return 0;
  });
}
