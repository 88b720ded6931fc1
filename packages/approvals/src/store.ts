import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { ApprovalsError } from "./errors.ts";
import type { AuditRecord, Change, Proposal, ProposalStatus, Scope, Widening } from "./types.ts";

/**
 * The queue: one SQLite file (`<home>/state/approvals.db`, WAL, 0600) shared by the controller
 * (which files proposals and puts approvals in force) and `bottle approvals` in another terminal
 * (which decides). Every step is appended to the `audit` table. Lookups are by primary key or an
 * index on (session_id, status); the controller's poll reads only rows not yet settled.
 */

interface Row {
  id: string;
  session_id: string;
  bottle: string;
  agent: string | null;
  change: string;
  justification: string;
  status: ProposalStatus;
  created_at: number;
  expires_at: number;
  widening: string;
  decided_by: Proposal["decidedBy"] | null;
  decided_at: number | null;
  scope: Scope | null;
  until: number | null;
  reason: string | null;
  applied_at: number | null;
  reverted_at: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS proposals (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  bottle TEXT NOT NULL,
  agent TEXT,
  kind TEXT NOT NULL,
  change TEXT NOT NULL,
  justification TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  widening TEXT NOT NULL,
  decided_by TEXT,
  decided_at INTEGER,
  scope TEXT,
  until INTEGER,
  reason TEXT,
  applied_at INTEGER,
  reverted_at INTEGER
);
CREATE INDEX IF NOT EXISTS proposals_session ON proposals (session_id, status);
CREATE INDEX IF NOT EXISTS proposals_status ON proposals (status);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time INTEGER NOT NULL,
  proposal_id TEXT NOT NULL,
  event TEXT NOT NULL,
  actor TEXT NOT NULL,
  detail TEXT
);
`;

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

function toProposal(r: Row): Proposal {
  const p: Proposal = {
    id: r.id,
    sessionId: r.session_id,
    bottle: r.bottle,
    change: JSON.parse(r.change) as Change,
    justification: r.justification,
    status: r.status,
    createdAt: iso(r.created_at) as string,
    expiresAt: iso(r.expires_at) as string,
    widening: JSON.parse(r.widening) as Widening[],
    inForce: r.status === "approved" && r.applied_at !== null && r.reverted_at === null,
  };
  if (r.agent !== null) p.agent = r.agent;
  if (r.decided_by !== null) p.decidedBy = r.decided_by;
  if (r.decided_at !== null) p.decidedAt = iso(r.decided_at) as string;
  if (r.scope !== null) p.scope = r.scope;
  if (r.until !== null) p.until = iso(r.until) as string;
  if (r.reason !== null) p.reason = r.reason;
  if (r.applied_at !== null) p.appliedAt = iso(r.applied_at) as string;
  if (r.reverted_at !== null) p.revertedAt = iso(r.reverted_at) as string;
  return p;
}

export interface NewProposal {
  sessionId: string;
  bottle: string;
  agent?: string;
  change: Change;
  justification: string;
  widening: Widening[];
  expiresAt: number;
}

export interface Decision {
  approve: boolean;
  by: NonNullable<Proposal["decidedBy"]>;
  scope?: Scope;
  until?: number;
  reason?: string;
}

export function defaultDbPath(home: string): string {
  return join(home, "state", "approvals.db");
}

/**
 * Every store this process opened, closed ones included, so that no better-sqlite3 object is
 * ever garbage-collected. better-sqlite3 12 wraps Database and Statement in node::ObjectWrap,
 * whose destructor on Node 24 asserts that a JS context is entered; a GC that finalizes one with
 * none entered (a scavenge in a microtask checkpoint) aborts the process with `Assertion failed:
 * (env) != nullptr`. It happened after tests closed a store (the gateway's compose tests, under
 * load). better-sqlite3 13 fixes it but needs Node >= 22, and we support Node 20.19. After
 * close() SQLite has freed the native memory; what stays is a few hundred bytes of shells per
 * statement, for the few stores a process opens.
 */
const PINNED: ApprovalStore[] = [];

/**
 * better-sqlite3, loaded with the first queue opened rather than with this package: a controller
 * loads the package on every `bottle run`, and most runs never open the queue (see service.ts).
 * Node's loader realpaths with the JS fs.realpathSync, which reads the process's shared stat
 * buffer: right after a stat of a socket it can leave a pnpm symlink unresolved, and
 * better-sqlite3's own dependencies then do not resolve. A stat of a regular file first puts it
 * right for this synchronous chain of requires.
 */
let sqlite: typeof Database | undefined;
function loadSqlite(): typeof Database {
  if (sqlite === undefined) {
    statSync(process.execPath);
    sqlite = createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  }
  return sqlite;
}

/** How many stores this process has pinned (for tests of the bound). */
export function pinnedStores(): number {
  return PINNED.length;
}

export class ApprovalStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #now: () => number;

  constructor(path: string, now: () => number = Date.now) {
    this.path = path;
    this.#now = now;
    const dir = join(path, "..");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fresh = !existsSync(path);
    let db: Database.Database | undefined;
    try {
      db = new (loadSqlite())(path);
      this.#db = db;
      PINNED.push(this);
      // exec, not db.pragma(): pragma() prepares a throwaway statement on every call.
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec("PRAGMA busy_timeout = 5000");
      this.#db.exec(SCHEMA);
    } catch (error) {
      // Opened but not usable (a schema the exec refused): close it (it stays pinned).
      if (db?.open) db.close();
      throw new ApprovalsError("E_STORE", `cannot open the approvals queue ${path}`, {
        cause: error,
        hint: "check that the state directory is writable by this user",
      });
    }
    if (fresh) chmodSync(path, 0o600);
  }

  static open(home: string, now?: () => number): ApprovalStore {
    return new ApprovalStore(defaultDbPath(home), now);
  }

  now(): number {
    return this.#now();
  }

  /**
   * Statements are prepared once and kept for the life of the process, as is the database: see
   * `PINNED`. Statement objects left to the garbage collector crashed Node 24 in better-sqlite3's
   * destructor (an assertion in RemoveEnvironmentCleanupHook) inside `bottle run`, where the
   * queue is polled every 200 ms.
   */
  readonly #statements = new Map<string, Database.Statement>();
  #prepare(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  /** Closes the database. The store stays pinned with its statements: see `PINNED`. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }

  audit(
    proposalId: string,
    event: AuditRecord["event"],
    actor: AuditRecord["actor"],
    detail?: Record<string, unknown>,
  ): void {
    this.#prepare(
      "INSERT INTO audit (time, proposal_id, event, actor, detail) VALUES (?, ?, ?, ?, ?)",
    ).run(
      this.#now(),
      proposalId,
      event,
      actor,
      detail === undefined ? null : JSON.stringify(detail),
    );
  }

  auditLog(proposalId?: string): AuditRecord[] {
    const rows = (
      proposalId === undefined
        ? this.#prepare("SELECT * FROM audit ORDER BY seq").all()
        : this.#prepare("SELECT * FROM audit WHERE proposal_id = ? ORDER BY seq").all(proposalId)
    ) as {
      seq: number;
      time: number;
      proposal_id: string;
      event: string;
      actor: string;
      detail: string | null;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      time: iso(r.time) as string,
      proposalId: r.proposal_id,
      event: r.event as AuditRecord["event"],
      actor: r.actor as AuditRecord["actor"],
      ...(r.detail === null ? {} : { detail: JSON.parse(r.detail) as Record<string, unknown> }),
    }));
  }

  /** Proposals a session filed since `sinceMs` (the rate limit). */
  countSince(sessionId: string, sinceMs: number): number {
    const r = this.#prepare(
      "SELECT count(*) AS n FROM proposals WHERE session_id = ? AND created_at >= ?",
    ).get(sessionId, sinceMs) as { n: number };
    return r.n;
  }

  insert(p: NewProposal): Proposal {
    const id = `p-${randomBytes(5).toString("hex")}`;
    const now = this.#now();
    this.#prepare(
      `INSERT INTO proposals (id, session_id, bottle, agent, kind, change, justification, status,
          created_at, expires_at, widening) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
    ).run(
      id,
      p.sessionId,
      p.bottle,
      p.agent ?? null,
      p.change.kind,
      JSON.stringify(p.change),
      p.justification,
      now,
      p.expiresAt,
      JSON.stringify(p.widening),
    );
    this.audit(id, "proposed", "agent", {
      session: p.sessionId,
      bottle: p.bottle,
      kind: p.change.kind,
      widening: p.widening.length,
    });
    return this.get(id) as Proposal;
  }

  get(id: string): Proposal | undefined {
    const r = this.#prepare("SELECT * FROM proposals WHERE id = ?").get(id) as Row | undefined;
    return r ? toProposal(r) : undefined;
  }

  list(filter: { status?: ProposalStatus; sessionId?: string } = {}): Proposal[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.status) {
      where.push("status = ?");
      args.push(filter.status);
    }
    if (filter.sessionId) {
      where.push("session_id = ?");
      args.push(filter.sessionId);
    }
    const sql = `SELECT * FROM proposals${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, id`;
    return (this.#prepare(sql).all(...args) as Row[]).map(toProposal);
  }

  /**
   * Decides a pending proposal. Only a pending proposal that has not expired can be decided:
   * anything else is `E_STATE` and nothing changes.
   */
  decide(id: string, d: Decision, actor: AuditRecord["actor"]): Proposal {
    const now = this.#now();
    const tx = this.#db.transaction(() => {
      const row = this.#prepare("SELECT * FROM proposals WHERE id = ?").get(id) as Row | undefined;
      if (!row) {
        throw new ApprovalsError("E_NOT_FOUND", `no proposal ${id}`, {
          hint: "bottle approvals list shows the pending ones",
        });
      }
      if (row.status !== "pending") {
        throw new ApprovalsError("E_STATE", `proposal ${id} is already ${row.status}`, {
          hint: "only pending proposals can be approved or denied",
        });
      }
      if (row.expires_at <= now && d.by === "operator") {
        throw new ApprovalsError(
          "E_STATE",
          `proposal ${id} timed out (denied at ${iso(row.expires_at)})`,
          {
            hint: "the agent can ask again",
          },
        );
      }
      this.#prepare(
        "UPDATE proposals SET status = ?, decided_by = ?, decided_at = ?, scope = ?, until = ?, reason = ? WHERE id = ?",
      ).run(
        d.approve
          ? "approved"
          : d.by === "timeout" || d.by === "session-ended"
            ? "expired"
            : "denied",
        d.by,
        now,
        d.scope ?? null,
        d.until ?? null,
        d.reason ?? null,
        id,
      );
      const event: AuditRecord["event"] = d.approve
        ? d.by === "auto"
          ? "auto_approved"
          : "approved"
        : d.by === "operator"
          ? "denied"
          : "expired";
      this.audit(id, event, actor, {
        ...(d.scope ? { scope: d.scope } : {}),
        ...(d.until ? { until: iso(d.until) } : {}),
        ...(d.reason ? { reason: d.reason } : {}),
        by: d.by,
      });
    });
    tx();
    return this.get(id) as Proposal;
  }

  markApplied(id: string): void {
    const r = this.#prepare(
      "UPDATE proposals SET applied_at = ? WHERE id = ? AND applied_at IS NULL",
    ).run(this.#now(), id);
    if (r.changes > 0) this.audit(id, "applied", "controller");
  }

  markReverted(id: string, why: string): void {
    const r = this.#prepare(
      "UPDATE proposals SET reverted_at = ? WHERE id = ? AND reverted_at IS NULL AND status = 'approved'",
    ).run(this.#now(), id);
    if (r.changes > 0) this.audit(id, "reverted", "controller", { why });
  }

  /** Pending proposals past their deadline are denied (fail closed); returns their ids. */
  expirePending(): string[] {
    const now = this.#now();
    const ids = (
      this.#prepare("SELECT id FROM proposals WHERE status = 'pending' AND expires_at <= ?").all(
        now,
      ) as { id: string }[]
    ).map((r) => r.id);
    for (const id of ids) {
      try {
        this.decide(
          id,
          { approve: false, by: "timeout", reason: "nobody decided in time" },
          "controller",
        );
      } catch {
        // decided meanwhile by another process
      }
    }
    return ids;
  }
}
