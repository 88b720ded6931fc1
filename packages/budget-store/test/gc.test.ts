import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "budget-store-gc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Regression test for the Node >= 24.19 abort: better-sqlite3 12 objects (Statement, Database)
 * finalized by a GC while no JS context is entered (e.g. a scavenge inside a microtask
 * checkpoint) hit `Assertion failed: (env) != nullptr` in node::ObjectWrap's destructor and abort
 * the process. The store keeps every such object reachable, so no GC can finalize one. On Node 20
 * this passes either way; CI's Node 24 run (`test:node24`) is where it bites.
 */
describe("garbage collection while the store works", () => {
  it("a process that forces GCs from microtasks and timers during every kind of call exits 0", async () => {
    const child = spawn(
      process.execPath,
      [
        "--expose-gc",
        "--import",
        "tsx",
        "--conditions=@bottlekit/source",
        fileURLToPath(new URL("./workers/gc-churn.ts", import.meta.url)),
        join(dir, "gc.db"),
        "300",
      ],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on("close", (c, s) => resolve([c, s])),
    );
    expect({ code, signal, stderr: err.slice(0, 2000) }).toEqual({
      code: 0,
      signal: null,
      stderr: "",
    });
    // (300 + 6) rounds × 5 settles on the file database (the :memory: stores are separate).
    expect(out.trim()).toBe("ok 1530");
  }, 600_000); // a hang guard only: 1,530 settles with forced GCs take minutes on a busy machine
});
