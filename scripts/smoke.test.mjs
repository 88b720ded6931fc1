// Shows that the smoke test fails when a package is broken: a synthetic package is packed and
// installed as-is (must pass), then with each of `files`, `exports`, `bin` and the shebang broken.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { smoke } from "./smoke.mjs";

const SHEBANG = "#!/usr/bin/env node\n";

function fixture(mutate = (m) => m, binSource = `${SHEBANG}import "../dist/cli.js";\n`) {
  const dir = mkdtempSync(join(tmpdir(), "bottlekit-smoke-fixture-"));
  mkdirSync(join(dir, "dist"));
  mkdirSync(join(dir, "bin"));
  writeFileSync(join(dir, "dist", "index.js"), "export const answer = 42;\n");
  writeFileSync(join(dir, "dist", "index.d.ts"), "export declare const answer: number;\n");
  writeFileSync(
    join(dir, "dist", "cli.js"),
    `const a = process.argv[2];
if (a === "--version") console.log("1.2.3");
else if (a === "--help") console.log("Usage: smoke-fixture [options]");
else process.exitCode = 2;
`,
  );
  writeFileSync(join(dir, "bin", "smoke-fixture.js"), binSource);
  chmodSync(join(dir, "bin", "smoke-fixture.js"), 0o755);
  const manifest = mutate({
    name: "@bottlekit/smoke-fixture",
    version: "1.2.3",
    type: "module",
    exports: {
      ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
      "./package.json": "./package.json",
    },
    bin: { "smoke-fixture": "./bin/smoke-fixture.js" },
    files: ["dist", "bin"],
  });
  writeFileSync(join(dir, "package.json"), JSON.stringify(manifest, null, 2));
  return dir;
}

function check(dir) {
  const result = smoke({ dirs: [dir] });
  rmSync(dir, { recursive: true, force: true });
  rmSync(result.workDir, { recursive: true, force: true });
  return result.failures;
}

test("a well-formed package passes", () => {
  assert.deepEqual(check(fixture()), []);
});

test("a files list that leaves out dist fails", () => {
  const failures = check(fixture((m) => ({ ...m, files: ["bin"] })));
  assert.ok(
    failures.some((f) => /exports target .*dist\/index\.js is not in the tarball/.test(f)),
    failures.join("\n"),
  );
});

test("an exports map pointing at a missing file fails", () => {
  const failures = check(
    fixture((m) => ({
      ...m,
      exports: { ".": { types: "./dist/index.d.ts", default: "./dist/main.js" } },
    })),
  );
  assert.ok(
    failures.some((f) => /dist\/main\.js is not in the tarball/.test(f)),
    failures.join("\n"),
  );
  assert.ok(
    failures.some((f) => /import failed/.test(f)),
    failures.join("\n"),
  );
});

test("a bin pointing at a missing file fails", () => {
  const failures = check(fixture((m) => ({ ...m, bin: { "smoke-fixture": "./bin/missing.js" } })));
  assert.ok(
    failures.some((f) => /bin smoke-fixture -> \.\/bin\/missing\.js is not in the tarball/.test(f)),
    failures.join("\n"),
  );
});

test("a bin without a shebang fails", () => {
  const failures = check(fixture(undefined, `import "../dist/cli.js";\n`));
  assert.ok(
    failures.some((f) => /'smoke-fixture --help' exited/.test(f)),
    failures.join("\n"),
  );
});
