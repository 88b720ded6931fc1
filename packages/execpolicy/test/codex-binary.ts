/** Locates the real Codex binary shipped by the `@openai/codex` dev dependency and runs `execpolicy check`. */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const TRIPLES: Record<string, [string, string]> = {
  "linux-x64": ["x86_64-unknown-linux-musl", "@openai/codex-linux-x64"],
  "linux-arm64": ["aarch64-unknown-linux-musl", "@openai/codex-linux-arm64"],
  "darwin-x64": ["x86_64-apple-darwin", "@openai/codex-darwin-x64"],
  "darwin-arm64": ["aarch64-apple-darwin", "@openai/codex-darwin-arm64"],
};

/** [command, leading args]: the native binary when found (fast), else `node codex.js`. */
export function codexCommand(): [string, string[]] {
  const require = createRequire(import.meta.url);
  const wrapperPkg = require.resolve("@openai/codex/package.json");
  const target = TRIPLES[`${process.platform}-${process.arch}`];
  if (target) {
    try {
      const req = createRequire(wrapperPkg);
      const pkg = req.resolve(`${target[1]}/package.json`);
      const bin = join(dirname(pkg), "vendor", target[0], "bin", "codex");
      if (existsSync(bin)) return [bin, []];
    } catch {
      // fall through to the JS launcher
    }
  }
  return [process.execPath, [join(dirname(wrapperPkg), "bin", "codex.js")]];
}

export function runCodexCheck(
  rulesFiles: string[],
  argv: string[],
  opts: { resolve?: boolean; cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, lead] = codexCommand();
  const args = [
    ...lead,
    "execpolicy",
    "check",
    ...rulesFiles.flatMap((f) => ["--rules", f]),
    ...(opts.resolve ? ["--resolve-host-executables"] : []),
    "--",
    ...argv,
  ];
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
