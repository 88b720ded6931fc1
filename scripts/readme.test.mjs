// Walks the root README as a newcomer would: every npm command it shows exists, every bottlekit
// command it shows is a real command of the built bin (its --help lists it), every file and link
// it names is in the repository, and every package has a README. Runs after the build in npm test.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { root, workspacePackages } from "./lib.mjs";

const readme = readFileSync(join(root, "README.md"), "utf8");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const shellLines = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
  .flatMap((m) => m[1].split("\n"))
  .map((l) => l.replace(/#.*$/, "").trim())
  .filter(Boolean);

const BINS = {
  bottle: "apps/bottle/bin/bottle.js",
  "bottle-gateway": "apps/gateway/bin/bottle-gateway.js",
  agentcli: "apps/agentcli/bin/agentcli.js",
};

function help(bin) {
  const r = spawnSync(process.execPath, [join(root, BINS[bin]), "--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, `${bin} --help failed: ${r.stderr}`);
  return r.stdout;
}

test("the README shows shell commands", () => {
  assert.ok(shellLines.length >= 10, "expected the quick start and first-bottle commands");
});

test("every npm command in the README is a script of the root package.json", () => {
  for (const line of shellLines) {
    const m = /^npm (?:run )?([\w:-]+)/.exec(line);
    if (!m || ["install", "i"].includes(m[1])) continue;
    assert.ok(
      m[1] in pkg.scripts,
      `README runs \`npm ${m[1]}\`, which package.json does not define`,
    );
  }
});

test("every bottle / bottle-gateway command in the README exists in the built bin", () => {
  const helps = {};
  for (const line of shellLines) {
    const m = /^(bottle-gateway|bottle|agentcli) ([a-z][\w-]*)/.exec(line);
    if (!m) continue;
    helps[m[1]] ??= help(m[1]);
    assert.match(
      helps[m[1]],
      new RegExp(`^\\s+${m[2]}\\b`, "m"),
      `README shows \`${m[1]} ${m[2]}\`, which \`${m[1]} --help\` does not list`,
    );
  }
});

test("every path the README names exists", () => {
  const paths = [
    ...[...readme.matchAll(/\]\(((?!https?:)[^)#]+)\)/g)].map((m) => m[1]),
    ...[...readme.matchAll(/`((?:examples|docs|packages|apps|scripts)\/[\w./-]+)`/g)].map(
      (m) => m[1],
    ),
  ];
  assert.ok(paths.length > 5);
  for (const p of paths)
    assert.ok(existsSync(join(root, p)), `README names ${p}, which does not exist`);
});

test("every workspace package has a README and is in the README's package table", () => {
  for (const { dir, manifest } of workspacePackages()) {
    assert.ok(existsSync(join(dir, "README.md")), `${manifest.name} has no README.md`);
    if (manifest.private) continue;
    assert.ok(
      readme.includes(`\`${manifest.name}\``),
      `${manifest.name} is missing from the README's package table`,
    );
  }
});
