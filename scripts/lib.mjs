// Shared helpers for the repository scripts. Plain Node (no dependencies) so they run before
// anything is installed, on a machine that has only Node >= 20.19 and npm.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const toolsDir = join(root, ".tools");

/** pnpm version pinned in the root package.json `packageManager` field. */
export function pinnedPnpm() {
  const pm = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager;
  const match = /^pnpm@(\d+\.\d+\.\d+)$/.exec(pm ?? "");
  if (!match) throw new Error(`package.json packageManager must be pnpm@x.y.z, got ${pm}`);
  return match[1];
}

export function log(message) {
  process.stderr.write(`\n▸ ${message}\n`);
}

/** Runs a command, inheriting stdio; throws with the command line when it fails. */
export function sh(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, {
    stdio: "inherit",
    cwd: root,
    env: options.env ?? toolEnv(),
    ...options,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const err = new Error(
      `command failed (exit ${result.status ?? result.signal}): ${cmd} ${args.join(" ")}`,
    );
    err.exitCode = result.status ?? 1;
    throw err;
  }
  return result;
}

/** Environment with the repository-local pnpm and node_modules/.bin first on PATH. */
export function toolEnv(extra = {}) {
  const path = [
    join(toolsDir, "node_modules", ".bin"),
    join(root, "node_modules", ".bin"),
    process.env.PATH ?? "",
  ].join(delimiter);
  return {
    ...process.env,
    PATH: path,
    TURBO_TELEMETRY_DISABLED: "1",
    DO_NOT_TRACK: "1",
    ...localNodeHeaders(),
    ...extra,
  };
}

/**
 * Compiling better-sqlite3 needs Node's headers. node-gyp downloads them from nodejs.org unless
 * told where they are, and CI has no network but the npm registry. When no `nodedir` is set and
 * the running Node's install prefix ships its headers (`<prefix>/include/node/node.h`, as the
 * Debian and tarball installs do), point node-gyp there.
 */
function localNodeHeaders() {
  const env = process.env;
  if (env.npm_config_nodedir || env.NPM_CONFIG_NODEDIR) return {};
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, "include", "node", "node.h"))
    ? { npm_config_nodedir: prefix }
    : {};
}

/**
 * Makes the pinned pnpm available without a global install: it is installed with npm into
 * `.tools/` (ignored by git) the first time and reused afterwards.
 */
export function ensurePnpm() {
  const version = pinnedPnpm();
  const pkg = join(toolsDir, "node_modules", "pnpm", "package.json");
  if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).version === version) return;
  log(`installing pnpm ${version} into .tools/ (no global install)`);
  sh(
    "npm",
    [
      "install",
      "--prefix",
      toolsDir,
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      `pnpm@${version}`,
    ],
    { env: process.env },
  );
}

export function pnpmInstall() {
  ensurePnpm();
  log("installing workspace dependencies (pnpm install --frozen-lockfile)");
  sh("pnpm", ["install", "--frozen-lockfile", "--reporter=append-only"]);
}

/** Every workspace package: { dir, manifest }. */
export function workspacePackages() {
  const out = [];
  for (const group of ["packages", "apps"]) {
    const base = join(root, group);
    for (const name of readdirSync(base).sort()) {
      const file = join(base, name, "package.json");
      if (existsSync(file))
        out.push({ dir: join(base, name), manifest: JSON.parse(readFileSync(file, "utf8")) });
    }
  }
  return out;
}

export function publishablePackages() {
  return workspacePackages().filter((p) => !p.manifest.private);
}
