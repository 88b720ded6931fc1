#!/usr/bin/env node
// Pack-and-install smoke test: packs every publishable package with pnpm (as it will be
// published), installs all the tarballs together with plain npm into a fresh temporary project,
// imports every library, and runs every bin with --help and --version. It catches what unit tests
// cannot: a wrong `files` list, a broken `exports` map, a missing bin target or shebang.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { publishablePackages, root, toolEnv } from "./lib.mjs";

function run(cmd, args, cwd, env = toolEnv()) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return {
    status: r.status ?? 1,
    stdout: r.stdout ?? "",
    stderr: (r.stderr ?? "") + (r.error ? String(r.error) : ""),
  };
}

/** Every file path named by an `exports` map (all conditions, all subpaths). */
function exportTargets(value, out = []) {
  if (typeof value === "string") out.push(value);
  else if (value && typeof value === "object")
    for (const v of Object.values(value)) exportTargets(v, out);
  return out;
}

/**
 * @param {{ dirs: string[], workDir?: string, log?: (line: string) => void }} options
 * @returns {{ failures: string[], workDir: string }}
 */
export function smoke({
  dirs,
  workDir = mkdtempSync(join(tmpdir(), "bottlekit-smoke-")),
  log = () => {},
}) {
  const failures = [];
  const fail = (msg) => {
    failures.push(msg);
    log(`FAIL ${msg}`);
  };
  const tarDir = join(workDir, "tarballs");
  const project = join(workDir, "project");
  mkdirSync(tarDir, { recursive: true });
  mkdirSync(project, { recursive: true });

  const manifests = [];
  const tarballs = [];
  for (const dir of dirs) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    manifests.push(manifest);
    const before = new Set(readdirSync(tarDir));
    const packed = run("pnpm", ["pack", "--pack-destination", tarDir], dir);
    const created = readdirSync(tarDir).filter((f) => !before.has(f) && f.endsWith(".tgz"));
    if (packed.status !== 0 || created.length !== 1) {
      fail(`${manifest.name}: pnpm pack failed\n${packed.stderr}`);
      continue;
    }
    const tarball = join(tarDir, created[0]);
    tarballs.push(tarball);
    // Static checks on the tarball contents.
    const list = run("tar", ["-tzf", tarball], dir);
    const files = new Set(
      list.stdout
        .split("\n")
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, "")),
    );
    for (const target of exportTargets(manifest.exports)) {
      const path = target.replace(/^\.\//, "");
      if (!files.has(path))
        fail(
          `${manifest.name}: exports target ${target} is not in the tarball (check "files" and the build)`,
        );
    }
    for (const [bin, target] of Object.entries(manifest.bin ?? {})) {
      if (!files.has(target.replace(/^\.\//, "")))
        fail(`${manifest.name}: bin ${bin} -> ${target} is not in the tarball`);
    }
  }
  if (tarballs.length !== dirs.length) return { failures, workDir };

  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "bottlekit-smoke", private: true, type: "module" }, null, 2),
  );
  log(`installing ${tarballs.length} tarballs with npm into ${project}`);
  // Lifecycle scripts are skipped: the only one is better-sqlite3's native build, whose result is
  // the same file the workspace already compiled for this Node (reused below; rebuilt otherwise).
  const install = run(
    "npm",
    [
      "install",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--loglevel=error",
      ...tarballs,
    ],
    project,
    process.env,
  );
  if (install.status !== 0) {
    fail(`npm install of the tarballs failed\n${install.stderr}`);
    return { failures, workDir };
  }
  const native = provideNativeAddons(project);
  if (native) fail(native);

  for (const manifest of manifests) {
    if (manifest.exports?.["."]) {
      const code = `const m = await import(${JSON.stringify(manifest.name)}); const n = Object.keys(m).length; if (n === 0) { console.error("no exports"); process.exit(1); } console.log(n);`;
      const imported = run(
        process.execPath,
        ["--input-type=module", "-e", code],
        project,
        process.env,
      );
      if (imported.status !== 0) fail(`${manifest.name}: import failed\n${imported.stderr}`);
      else log(`ok   import ${manifest.name} (${imported.stdout.trim()} exports)`);
    }
    for (const bin of Object.keys(manifest.bin ?? {})) {
      const exe = join(project, "node_modules", ".bin", bin);
      const help = run(exe, ["--help"], project, { ...process.env, NO_COLOR: "1" });
      if (help.status !== 0 || !/usage/i.test(help.stdout)) {
        fail(
          `${manifest.name}: '${bin} --help' exited ${help.status}\n${help.stdout}${help.stderr}`,
        );
      }
      const version = run(exe, ["--version"], project, process.env);
      if (version.status !== 0 || version.stdout.trim() !== manifest.version) {
        fail(
          `${manifest.name}: '${bin} --version' printed '${version.stdout.trim()}' (exit ${version.status}), expected ${manifest.version}\n${version.stderr}`,
        );
      }
      if (help.status === 0 && version.status === 0) log(`ok   ${bin} --help, --version`);
      if (bin === "execpolicy") checkExecpolicyShell(exe, project, fail, log);
    }
  }
  return { failures, workDir };
}

/**
 * The installed execpolicy parses a script: its bundled bash parser finds both wasm files from the
 * installed layout, twice (the second run through the code cache the first one wrote).
 */
function checkExecpolicyShell(exe, project, fail, log) {
  const rules = join(
    project,
    "node_modules",
    "@bottlekit",
    "execpolicy",
    "examples",
    "policy.rules",
  );
  const env = {
    ...process.env,
    BOTTLEKIT_EXECPOLICY_CACHE_DIR: join(project, ".execpolicy-cache"),
  };
  for (const pass of ["first", "cached"]) {
    const r = run(
      exe,
      ["check", "-r", rules, "--shell", "git status && rm -rf build"],
      project,
      env,
    );
    let decision;
    try {
      decision = JSON.parse(r.stdout).decision;
    } catch {}
    if (r.status !== 0 || decision !== "forbidden") {
      fail(
        `execpolicy check --shell (${pass} run) exited ${r.status}, decision ${decision}\n${r.stdout}${r.stderr}`,
      );
      return;
    }
  }
  log("ok   execpolicy check --shell (bundled bash parser, code cache)");
}

/** Copies the workspace's compiled better-sqlite3 into the smoke project, or rebuilds it there. */
function provideNativeAddons(project) {
  const pkgDir = join(project, "node_modules", "better-sqlite3");
  if (!existsSync(pkgDir)) return undefined;
  const { version } = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const built = join(
    root,
    "node_modules",
    ".pnpm",
    `better-sqlite3@${version}`,
    "node_modules",
    "better-sqlite3",
    "build",
    "Release",
    "better_sqlite3.node",
  );
  if (existsSync(built)) {
    mkdirSync(join(pkgDir, "build", "Release"), { recursive: true });
    copyFileSync(built, join(pkgDir, "build", "Release", "better_sqlite3.node"));
    return undefined;
  }
  const rebuilt = run("npm", ["rebuild", "better-sqlite3"], project, process.env);
  return rebuilt.status === 0 ? undefined : `npm rebuild better-sqlite3 failed\n${rebuilt.stderr}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dirs = publishablePackages().map((p) => p.dir);
  const { failures, workDir } = smoke({ dirs, log: (line) => process.stderr.write(`${line}\n`) });
  if (failures.length > 0) {
    process.stderr.write(`smoke: ${failures.length} failure(s); files kept in ${workDir}\n`);
    process.exit(1);
  }
  rmSync(workDir, { recursive: true, force: true });
  process.stderr.write(`smoke: ${dirs.length} packages packed, installed, imported and run\n`);
}
