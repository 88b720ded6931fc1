import os from "node:os";
import path from "node:path";
import { openStore } from "@bottlekit/budget-store";
import type { CliIo } from "../cli.ts";
import { listSessions } from "../run/sessions.ts";
import { resolveStoreUrl } from "../store.ts";

export interface PsFlags {
  home?: string;
  json?: boolean;
}

function homeOf(flags: PsFlags, io: CliIo): string {
  return path.resolve(
    flags.home ?? (io.env["BOTTLEKIT_HOME"] || path.join(os.homedir(), ".bottlekit")),
  );
}

function uptime(since: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `bottle ps`: live sessions with bottle, agent, pid, uptime and tokens used against budgets. */
export async function runPs(flags: PsFlags, io: CliIo): Promise<number> {
  const home = homeOf(flags, io);
  const sessions = listSessions(home);
  const tokens = new Map<string, string>();
  if (sessions.length > 0) {
    try {
      const url = io.env["BOTTLEKIT_STORE"] ? resolveStoreUrl({}, io.env).url : undefined;
      const store = await openStore(url, { home });
      try {
        for (const s of sessions) {
          const parts: string[] = [];
          for (const b of s.budgets) {
            const r = await store.remaining({
              bottle: s.bottle,
              agent: s.agent ?? s.bottle,
              provider: b.provider,
            });
            const used = r ? r.used : 0;
            parts.push(`${b.provider} ${used}/${b.tokens}`);
          }
          tokens.set(s.sessionId, parts.join(", ") || "-");
        }
      } finally {
        await store.close();
      }
    } catch {
      // No store yet: no usage to show.
    }
  }
  if (flags.json) {
    io.stdout.write(
      `${JSON.stringify(
        {
          sessions: sessions.map((s) => ({
            ...s,
            uptime: uptime(s.startedAt),
            tokens: tokens.get(s.sessionId) ?? "-",
          })),
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  if (sessions.length === 0) {
    io.stdout.write("no live sessions\n");
    return 0;
  }
  const rows = [["SESSION", "BOTTLE", "AGENT", "PID", "UPTIME", "STATE", "TOKENS/BUDGET"]];
  for (const s of sessions) {
    rows.push([
      s.sessionId,
      s.bottle,
      s.agent ?? s.kind,
      String(s.pid),
      uptime(s.startedAt),
      s.state,
      tokens.get(s.sessionId) ?? "-",
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  io.stdout.write(
    `${rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n")}\n`,
  );
  return 0;
}
