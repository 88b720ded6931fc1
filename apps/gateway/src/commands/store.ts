// `bottle-gateway store migrate --from sqlite:<path> --to postgres://… [--json]`: copy a SQLite
// store into an empty Postgres store (budgets, gateway keys, ledger, cutoffs, audit trail) and
// verify the totals. Stop the gateways that use the SQLite store first: calls in flight do not
// move. Exit 0 copied and verified; 1 the copy failed (nothing written); 2 bad URLs.
import { copyStore, isBudgetStoreError, redactStoreUrl } from "@bottlekit/budget-store";
import { type CliIo, EXIT } from "../cli.ts";
import { GatewayError } from "../errors.ts";

export interface MigrateOptions {
  from?: string;
  to?: string;
  json?: boolean;
}

export async function migrate(opts: MigrateOptions, io: CliIo): Promise<number> {
  const from = opts.from;
  const to = opts.to ?? io.env["BOTTLEKIT_STORE"];
  if (from === undefined || from === "" || to === undefined || to === "") {
    throw new GatewayError(
      "E_USAGE",
      "store migrate needs --from sqlite:<path> and --to postgres://…",
      {
        hint: "e.g. bottle-gateway store migrate --from sqlite:$HOME/.bottlekit/bottlekit.db --to postgres://bottlekit@db:5432/bottlekit",
      },
    );
  }
  try {
    const result = await copyStore(from, to, (table, rows) => {
      if (opts.json !== true) io.stderr.write(`copied ${rows} rows of ${table}\n`);
    });
    if (opts.json === true) {
      io.stdout.write(
        `${JSON.stringify({ ok: true, from: redactStoreUrl(from), to: redactStoreUrl(to), totals: result.to })}\n`,
      );
    } else {
      const t = result.to;
      io.stdout.write(
        `copied and verified: ${t.budgets} budgets, ${t.gatewayKeys} gateway keys, ${t.events} usage events (${t.tokens} tokens, $${t.costUsd.toFixed(4)}), ${t.cutoffs} cutoffs, ${t.actions} audit entries\n` +
          `point the gateways at it: --store ${redactStoreUrl(to)} (or BOTTLEKIT_STORE)\n`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    if (isBudgetStoreError(error)) {
      const usage = error.code === "E_INVALID_INPUT" || error.code === "E_STORE_URL";
      throw new GatewayError(usage ? "E_USAGE" : "E_STORE", error.message, {
        ...(error.hint !== undefined ? { hint: error.hint } : {}),
        cause: error,
      });
    }
    throw error;
  }
}
