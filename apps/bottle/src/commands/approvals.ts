import { existsSync } from "node:fs";
import type { Proposal } from "@bottlekit/approvals";
import { exitCodeForErrorCode } from "@bottlekit/diagnostics";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, writeJson } from "../context.ts";
import { BottleError } from "../errors.ts";

/**
 * `bottle approvals`: the operator's queue. `list` shows pending proposals with the exact change
 * as a manifest diff and the widening it causes; `approve <id> [--for 1h | --session | --persist]`
 * and `deny <id> --reason`. Decisions go to the queue ($BOTTLEKIT_HOME/state/approvals.db) and to
 * the controller over its control socket; every step is audited there.
 */

export interface ApprovalsFlags extends LocationFlags {
  json?: boolean;
  all?: boolean;
  for?: string;
  session?: boolean;
  persist?: boolean;
  reason?: string;
}

async function homeOf(flags: LocationFlags, io: CliIo): Promise<string> {
  const { resolveDirs } = await import("@bottlekit/manifest");
  return resolveDirs({ env: io.env, ...(flags.home === undefined ? {} : { home: flags.home }) })
    .home;
}

/**
 * Opens the queue of `home`. No queue yet (no controller ever filed a proposal there): `undefined`
 * — nothing is created, so a mistyped --home does not leave directories behind.
 */
async function openQueue(home: string) {
  const { ApprovalStore, defaultDbPath } = await import("@bottlekit/approvals");
  return existsSync(defaultDbPath(home)) ? ApprovalStore.open(home) : undefined;
}

function noQueue(home: string, id: string): never {
  throw new BottleError("E_INVALID_INPUT", `no proposal ${id}: ${home} has no approvals queue`, {
    hint: "check --home / BOTTLEKIT_HOME; bottle approvals lists the pending proposals",
  });
}

function describeChange(p: Proposal): string {
  const c = p.change;
  switch (c.kind) {
    case "route":
      return `route ${c.op} ${c.route.host}${c.route.port === undefined ? "" : `:${c.route.port}`}`;
    case "provider":
      return `provider ${c.provider} for ${c.host}`;
    case "budget":
      return `budget ${c.provider} to ${c.tokens} tokens`;
    case "dlp_hold":
      return `DLP hold: ${c.method} ${c.host}${c.path} (${[...new Set(c.findings.map((f) => f.rule))].join(", ")})`;
  }
}

/** Runs a subcommand, rendering approvals errors like the rest of bottle's (exit 2 / 1). */
async function guarded(
  io: CliIo,
  json: boolean | undefined,
  work: () => Promise<number>,
): Promise<number> {
  const { isApprovalsError } = await import("@bottlekit/approvals");
  try {
    return await work();
  } catch (error) {
    if (!isApprovalsError(error)) throw error;
    io.stderr.write(`bottle: ${error.message}\n`);
    if (error.hint) io.stderr.write(`hint: ${error.hint}\n`);
    if (json)
      writeJson(io, {
        error: { code: error.code, message: error.message, hint: error.hint ?? null },
      });
    return exitCodeForErrorCode(error.code);
  }
}

/** `bottle approvals [list] [--all] [--json]` */
export async function runApprovalsList(flags: ApprovalsFlags, io: CliIo): Promise<number> {
  return guarded(io, flags.json, async () => {
    const { manifestPreview } = await import("@bottlekit/approvals");
    const home = await homeOf(flags, io);
    const store = await openQueue(home);
    if (!store) {
      if (flags.json) writeJson(io, { home, proposals: [] });
      else io.stdout.write(flags.all ? "no proposals\n" : "no pending proposals\n");
      return 0;
    }
    try {
      store.expirePending();
      const list = flags.all ? store.list() : store.list({ status: "pending" });
      const rows = list.map((p) => ({ ...p, manifest: manifestPreview(home, p) }));
      if (flags.json) {
        writeJson(io, { home, proposals: rows });
        return 0;
      }
      if (rows.length === 0) {
        io.stdout.write(flags.all ? "no proposals\n" : "no pending proposals\n");
        return 0;
      }
      const paint = painter(io.stdout, io.env);
      for (const p of rows) {
        io.stdout.write(
          `${paint("bold", p.id)}  ${p.status}${p.inForce ? " (in force)" : ""}  bottle ${p.bottle}  ${describeChange(p)}\n`,
        );
        io.stdout.write(
          `  session ${p.sessionId}${p.agent ? `, agent ${p.agent}` : ""}; asked ${p.createdAt}`,
        );
        io.stdout.write(
          p.status === "pending" ? `; denied unless decided by ${p.expiresAt}\n` : "\n",
        );
        io.stdout.write(
          `  justification: ${p.justification.replace(/[\u0000-\u001f\u007f]/g, " ")}\n`,
        );
        if (p.widening.length === 0) io.stdout.write("  widening: none\n");
        for (const w of p.widening)
          io.stdout.write(`  widening: ${paint("yellow", w.kind)} ${w.host}: ${w.detail}\n`);
        if (p.manifest.diff) {
          io.stdout.write("  manifest diff (--persist):\n");
          for (const line of p.manifest.diff.trimEnd().split("\n")) {
            const color =
              line.startsWith("+") && !line.startsWith("+++")
                ? "green"
                : line.startsWith("-") && !line.startsWith("---")
                  ? "red"
                  : undefined;
            io.stdout.write(`    ${color ? paint(color, line) : line}\n`);
          }
        } else if (p.manifest.note) io.stdout.write(`  manifest: ${p.manifest.note}\n`);
        io.stdout.write("\n");
      }
      return 0;
    } finally {
      store.close();
    }
  });
}

/** `bottle approvals approve <id> [--for 1h | --session | --persist]` */
export async function runApprovalsApprove(
  id: string,
  flags: ApprovalsFlags,
  io: CliIo,
): Promise<number> {
  const chosen = [flags.for !== undefined, flags.session === true, flags.persist === true].filter(
    Boolean,
  ).length;
  if (chosen > 1) {
    throw new BottleError("E_USAGE", "approve: give one of --for, --session or --persist", {
      hint: "bottle approvals approve <id> --for 1h",
    });
  }
  return guarded(io, flags.json, async () => {
    const { decide, parseDuration } = await import("@bottlekit/approvals");
    let forMs: number | undefined;
    if (flags.for !== undefined) {
      forMs = parseDuration(flags.for);
      if (forMs === undefined) {
        throw new BottleError("E_USAGE", `--for: ${JSON.stringify(flags.for)} is not a duration`, {
          hint: "e.g. --for 30m, --for 1h, --for 1d",
        });
      }
    }
    const home = await homeOf(flags, io);
    const store = (await openQueue(home)) ?? noQueue(home, id);
    try {
      const r = await decide(store, id, {
        home,
        approve: true,
        scope: flags.persist ? "persist" : forMs !== undefined ? "for" : "session",
        ...(forMs === undefined ? {} : { forMs }),
        ...(flags.reason ? { reason: flags.reason } : {}),
      });
      if (flags.json) {
        writeJson(io, {
          proposal: r.proposal,
          controller: r.controller,
          ...(r.persisted ? { persisted: r.persisted } : {}),
        });
        return 0;
      }
      const p = r.proposal;
      io.stdout.write(
        `approved ${p.id} (${describeChange(p)}) for ${p.scope === "for" ? `until ${p.until}` : p.scope === "persist" ? "good: written to the manifest" : "the session"}\n`,
      );
      const live = p.change.kind === "route" || p.change.kind === "provider";
      if (live) {
        io.stdout.write(
          p.inForce
            ? "in force in the live session\n"
            : `recorded; the controller puts it in force when it next reads the queue (${r.controller === "socket" ? "it was told" : "no control socket answered"})\n`,
        );
      }
      if (r.persisted) {
        io.stdout.write(`${r.persisted.file}:\n${r.persisted.diff}`);
      }
      return 0;
    } finally {
      store.close();
    }
  });
}

/** `bottle approvals deny <id> --reason <text>` */
export async function runApprovalsDeny(
  id: string,
  flags: ApprovalsFlags,
  io: CliIo,
): Promise<number> {
  const reason = flags.reason?.trim() ?? "";
  if (reason === "" || /[\u0000-\u001f\u007f]/.test(reason) || reason.length > 500) {
    throw new BottleError(
      "E_USAGE",
      "deny: --reason must be one printable line (1-500 characters)",
      {
        hint: 'bottle approvals deny <id> --reason "not needed for this task"',
      },
    );
  }
  return guarded(io, flags.json, async () => {
    const { decide } = await import("@bottlekit/approvals");
    const home = await homeOf(flags, io);
    const store = (await openQueue(home)) ?? noQueue(home, id);
    try {
      const r = await decide(store, id, { home, approve: false, reason });
      if (flags.json) writeJson(io, { proposal: r.proposal, controller: r.controller });
      else io.stdout.write(`denied ${r.proposal.id} (${describeChange(r.proposal)}): ${reason}\n`);
      return 0;
    } finally {
      store.close();
    }
  });
}

/** `bottle approvals history [id]`: the audit trail of the queue. */
export async function runApprovalsHistory(
  id: string | undefined,
  flags: ApprovalsFlags,
  io: CliIo,
): Promise<number> {
  return guarded(io, flags.json, async () => {
    const home = await homeOf(flags, io);
    const store = await openQueue(home);
    if (!store) {
      if (flags.json) writeJson(io, { audit: [] });
      return 0;
    }
    try {
      const log = store.auditLog(id);
      if (flags.json) writeJson(io, { audit: log });
      else
        for (const e of log) {
          io.stdout.write(
            `${e.time}  ${e.proposalId}  ${e.event}  by ${e.actor}${e.detail ? `  ${JSON.stringify(e.detail)}` : ""}\n`,
          );
        }
      return 0;
    } finally {
      store.close();
    }
  });
}
