import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type Database from "better-sqlite3";

/** What this package uses of a better-sqlite3 database. */
export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): Database.Statement;
  exec(sql: string): unknown;
  close(): unknown;
}

/** Options of `openConnection`: the ones this package uses. */
export interface ConnectionOptions {
  readonly?: boolean;
}

/** better-sqlite3 12's native database, as its lib/database.js constructs and calls it. */
interface NativeDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string, database: object, pragmaMode: boolean): Database.Statement;
  exec(sql: string): void;
  close(): void;
}

/** better-sqlite3 12's native addon: what lib/database.js takes from it. */
interface Addon {
  Database: new (
    filename: string,
    filenameGiven: string,
    anonymous: boolean,
    readonly: boolean,
    fileMustExist: boolean,
    timeout: number,
    verbose: null,
    buffer: null,
  ) => NativeDatabase;
  setErrorConstructor(ctor: unknown): void;
  isInitialized?: boolean;
}

/**
 * better-sqlite3's Database over its native addon, without its JS: lib/database.js is a thin
 * shell (argument checks, then `new addon.Database(...)`; `prepare`, `exec` and `close` pass
 * straight through) that requires eleven more files for methods this package never calls
 * (backup, serialize, user functions, virtual tables, pragma(), transaction()). Loading those
 * twelve files through Node's resolver was about 7 ms and 200 fresh pages of `bottle run`'s
 * controller start; this loads one (the SqliteError class, the same module better-sqlite3's
 * own index.js loads). Statements are the addon's own, so they behave
 * exactly as better-sqlite3's. Used only with the better-sqlite3 major this mirrors (see
 * `sqlite()`); another one gets better-sqlite3's own class.
 */
class LeanDatabase implements SqliteDatabase {
  readonly #native: NativeDatabase;

  constructor(addon: Addon, filenameGiven: string, readonly: boolean) {
    // As lib/database.js does, with its messages.
    const filename = filenameGiven.trim();
    const anonymous = filename === "" || filename === ":memory:";
    if (readonly && anonymous) {
      throw new TypeError("In-memory/temporary databases cannot be readonly");
    }
    if (!anonymous && !filename.startsWith("file:") && !existsSync(dirname(filename))) {
      throw new TypeError("Cannot open database because the directory does not exist");
    }
    // Its default busy timeout (5 s); openSqlite sets the store's own with a pragma.
    this.#native = new addon.Database(
      filename,
      filenameGiven,
      anonymous,
      readonly,
      false,
      5000,
      null,
      null,
    );
  }

  get open(): boolean {
    return this.#native.open;
  }

  get inTransaction(): boolean {
    return this.#native.inTransaction;
  }

  prepare(sql: string): Database.Statement {
    return this.#native.prepare(sql, this, false);
  }

  exec(sql: string): this {
    this.#native.exec(sql);
    return this;
  }

  close(): this {
    this.#native.close();
    return this;
  }
}

/**
 * better-sqlite3 (its native addon included) loads with the first connection, not with this
 * library: a process that imports the store for its types, budget parsing or Postgres pays
 * nothing for SQLite (tens of ms of `bottle run`'s start-up before its sandbox is spawned).
 */
let opener: ((path: string, readonly: boolean) => SqliteDatabase) | undefined;
/**
 * The addon's file where better-sqlite3's build puts it, when it is there: loaded directly, it
 * spares the `bindings` package's search (a dozen candidate paths, each tried with a stat and a
 * require; about 4 ms of the first connection). Undefined: better-sqlite3 searches for it.
 */
let addonPath: string | undefined;
/** True when connections are LeanDatabase (tests). */
let lean = false;
function sqlite(): (path: string, readonly: boolean) => SqliteDatabase {
  if (opener === undefined) {
    // Node's module loader realpaths with the JS fs.realpathSync, which reads the process's
    // shared stat buffer: right after a stat of a socket (a proxy's, say) it can leave a pnpm
    // symlink unresolved, and better-sqlite3's own dependencies then do not resolve. A stat of a
    // regular file first puts the buffer right for the synchronous chain of requires below.
    statSync(process.execPath);
    const req = createRequire(import.meta.url);
    const root = betterSqliteRoot(req);
    const built = join(root, "build", "Release", "better_sqlite3.node");
    addonPath = existsSync(built) ? built : undefined;
    const manifest = join(root, "package.json");
    const { version } = JSON.parse(readFileSync(manifest, "utf8")) as { version?: unknown };
    if (addonPath !== undefined && typeof version === "string" && version.startsWith("12.")) {
      const addon = req(addonPath) as Addon;
      // What lib/database.js does at its first connection (the addon throws SqliteError). The
      // flag it sets is left to it: a copy of better-sqlite3 loaded later in this process (the
      // approvals queue's, maybe bundled) installs its own class, as it would have without us;
      // this package reads only an error's `code`.
      if (addon.isInitialized !== true) {
        addon.setErrorConstructor(req(join(root, "lib", "sqlite-error.js")));
      }
      lean = true;
      opener = (path, readonly) => new LeanDatabase(addon, path, readonly);
    } else {
      const Ctor = req("better-sqlite3") as typeof Database;
      const nativeBinding = addonPath;
      opener = (path, readonly) =>
        new Ctor(path, nativeBinding === undefined ? { readonly } : { nativeBinding, readonly });
    }
  }
  return opener;
}

/**
 * better-sqlite3's directory, a real path. Node's resolver, from this file in src/ or dist/
 * (neither has a node_modules of its own), finds it in this package's node_modules when it is
 * there: one native realpath instead of the resolver's walk and package.json reads (about 1 ms of
 * the first connection). Anywhere else (a hoisted install, say), the resolver.
 */
function betterSqliteRoot(req: NodeJS.Require): string {
  const near = join(
    dirname(fileURLToPath(import.meta.url)),
    "..",
    "node_modules",
    "better-sqlite3",
  );
  try {
    return realpathSync.native(near);
  } catch {
    return dirname(req.resolve("better-sqlite3/package.json"));
  }
}

/** The addon file as this package loads it (tests). Undefined until the first connection. */
export function sqliteAddonPath(): string | undefined {
  return addonPath;
}

/** Whether connections skip better-sqlite3's JS (tests). False until the first connection. */
export function sqliteIsLean(): boolean {
  return lean;
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
  readonly db: SqliteDatabase;
  readonly #stmts = new Map<string, Database.Statement>();

  constructor(db: SqliteDatabase) {
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
export function openConnection(path: string, options: ConnectionOptions = {}): Connection {
  const connection = new Connection(sqlite()(path, options.readonly === true));
  PINNED.push(connection);
  return connection;
}

/** How many connections this process has pinned (for tests of the bound). */
export function pinnedConnections(): number {
  return PINNED.length;
}
