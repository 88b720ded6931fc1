import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("./stress.mjs", import.meta.url));

test("stress: keeps its workers busy for --seconds, then exits 0", () => {
  const r = spawnSync(process.execPath, [script, "--workers", "1", "--seconds", "1"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0);
  assert.match(r.stderr, /1 busy worker\(s\) started/);
});

test("stress: a bad --workers is a usage error (exit 2)", () => {
  const r = spawnSync(process.execPath, [script, "--workers", "none"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--workers takes a positive integer/);
});
