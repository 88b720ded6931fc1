import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type Database from "better-sqlite3";

/**
 * better-sqlite3 (its native addon included) loads with the first connection, not with this
 * library: a process that imports the store for its types, budget parsing or Postgres pays
 * nothing for SQLite (tens of ms of `bottle run`'s start-up before its sandbox is spawned).
 */
let DatabaseCtor: typeof Database | undefined;
/**
 * The addon's file where better-sqlite3's build puts it, when it is there: handed to it as
 * `nativeBinding`, it spares the `bindings` package's search (a dozen candidate paths, each
 * tried with a stat and a require; about 4 ms of the first connection). Undefined: that search.
 */
let addonPath: string | undefined;
function sqlite(): typeof Database {
  if (DatabaseCtor === undefined) {
    // Node's module loader realpaths with the JS fs.realpathSync, which reads the process's
    // shared stat buffer: right after a stat of a socket (a proxy's, say) it can leave a pnpm
    // symlink unresolved, and better-sqlite3's own dependencies then do not resolve. A stat of a
    // regular file first puts the buffer right for the synchronous chain of requires below.
    statSync(process.execPath);
    const req = createRequire(import.meta.url);
    DatabaseCtor = req("better-sqlite3") as typeof Database;
    const built = join(
      dirname(req.resolve("better-sqlite3/package.json")),
      "build",
      "Release",
      "better_sqlite3.node",
    );
    addonPath = existsSync(built) ? built : undefined;
  }
  return DatabaseCtor;
}

/** The addon file as better-sqlite3 loads it (tests). Undefined until the first connection. */
export function sqliteAddonPath(): string | undefined {
  return addonPath;
}

/**
 * A better-sqlite3 connection whose JS objects are never garbage-collected.
 *
 * Why: better-sqlite3 12 wraps its native Database, Statement and StatementIterator objects in
 * node::ObjectWrap. On Node >= 24.19 ObjectWrap's destructor removes an environment cleanup hook
 * and asserts that `Environment::GetCurrent(isolate)` is non-null; when V8 finalizes such an object
 * from a GC that runs with no JS context entered (a scavenge inside a microtask checkpoint, for
 * one), the process aborts with `Assertion failed: (env) != nullptr`. better-sqlite3 13 (Node-API)
 * fixes it but needs Node >= 22, and we support Node 20.19. So nothing here may ever become
 * garbage:
 * - every prepared statement comes from `prepare()`, a per-connection cache keyed by SQL text
 *   (callers build SQL only from fixed fragments and bind every value, so the number of distinct
 *   texts per connection is bounded);
 * - no throwaway statements: no `db.pragma()` (it prepares one per call; use `exec("PRAGMA ...")`
 *   or a cached statement), no `iterate()` (each call creates a StatementIterator), no `backup()`;
 * - every connection, with its statement cache, stays in the module-level `PINNED` list for the
 *   life of the process, also after `close()`. The bound: one entry per connection ever opened
 *   (openStore calls, plus the tests' raw connections). After close SQLite has finalized the
 *   statements and freed the connection's native memory; what stays is the small JS/C++ shells
 *   (a few hundred bytes each, at most a few hundred statements per connection).
 * Transactions go through `transaction()` below, not better-sqlite3's `db.transaction()`: that
 * one prepares all nine of its BEGIN/COMMIT/SAVEPOINT/... statements at its first use, where a
 * store's open and first queries need three (each prepare costs a parse and fresh memory on the
 * controller's start-up path).
 */
export class Connection {
  readonly db: Database.Database;
  readonly #stmts = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.db = db;
  }

  /**
   * The cached statement for `sql`. Do not switch a cached statement's mode (`pluck`, `raw`,
   * `expand`, `safeIntegers`): every caller of the same text shares it.
   */
  prepare(sql: string): Database.Statement {
    let st = this.#stmts.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  /**
   * Run `fn` in a transaction: `BEGIN DEFERRED` or `BEGIN IMMEDIATE`, or a savepoint when one is
   * already open (a failing nested call is rolled back alone). The same protocol as
   * better-sqlite3's `db.transaction()`: commit when `fn` returns, roll back and rethrow when it
   * throws (unless SQLite already ended the transaction), and `fn` may not return a promise. Its
   * control statements are prepared on first use, from the statement cache.
   */
  transaction<T>(mode: "deferred" | "immediate", fn: () => T): T {
    const nested = this.db.inTransaction;
    const begin = this.prepare(nested ? SAVEPOINT : mode === "immediate" ? IMMEDIATE : DEFERRED);
    begin.run();
    try {
      const result = fn();
      if (
        result !== null &&
        typeof result === "object" &&
        typeof (result as { then?: unknown }).then === "function"
      ) {
        throw new TypeError("Transaction function cannot return a promise");
      }
      this.prepare(nested ? RELEASE : COMMIT).run();
      return result;
    } catch (error) {
      if (this.db.inTransaction) {
        this.prepare(nested ? ROLLBACK_TO : ROLLBACK).run();
        // ROLLBACK TO keeps the savepoint open: release it, as better-sqlite3 does.
        if (nested) this.prepare(RELEASE).run();
      }
      throw error;
    }
  }

  /** Run SQL that returns no rows (also `PRAGMA x = y` whose answer is not needed). */
  exec(sql: string): void {
    this.db.exec(sql);
  }

  /** Distinct statements prepared on this connection (for tests of the bound). */
  get statementCount(): number {
    return this.#stmts.size;
  }

  /** Close the database. The connection stays pinned: see the class comment. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

const DEFERRED = "BEGIN DEFERRED";
const IMMEDIATE = "BEGIN IMMEDIATE";
const COMMIT = "COMMIT";
const ROLLBACK = "ROLLBACK";
const SAVEPOINT = 'SAVEPOINT "bk_nested"';
const RELEASE = 'RELEASE "bk_nested"';
const ROLLBACK_TO = 'ROLLBACK TO "bk_nested"';

const PINNED: Connection[] = [];

/**
 * Open a database and pin it (see `Connection`). Everything in this package that opens a
 * better-sqlite3 database, tests and bench included, goes through here.
 */
export function openConnection(path: string, options?: Database.Options): Connection {
  const Ctor = sqlite();
  const connection = new Connection(
    new Ctor(path, addonPath === undefined ? options : { nativeBinding: addonPath, ...options }),
  );
  PINNED.push(connection);
  return connection;
}

/** How many connections this process has pinned (for tests of the bound). */
export function pinnedConnections(): number {
  return PINNED.length;
}
