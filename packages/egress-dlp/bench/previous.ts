/**
 * The scanner of an earlier revision, loaded into this process so the bench can time it in the
 * same run as the current one (ratios from one run are what a shared machine can give).
 *
 * `BENCH_PREVIOUS` names the revision (default: the last commit before issue 17's changes, the
 * "previous release" the issue compares throughput with; `none` skips it). Its `src/` is written
 * with `git archive` under this package's `node_modules/.cache/` (so its imports resolve to this
 * package's dependencies) and imported from there. Needs a git clone; returns why not otherwise.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { createScanner } from "../src/scan.ts";

export const DEFAULT_PREVIOUS = "05bf9a8";

export type PreviousScanner =
  | { ok: true; revision: string; createScanner: typeof createScanner }
  | { ok: false; why: string };

export async function loadPrevious(
  revision = process.env.BENCH_PREVIOUS ?? DEFAULT_PREVIOUS,
): Promise<PreviousScanner> {
  if (revision === "none") return { ok: false, why: "BENCH_PREVIOUS=none" };
  const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
  try {
    const git = (args: string[]) =>
      execFileSync("git", args, { cwd: pkg, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const full = git(["rev-parse", "--verify", `${revision}^{commit}`]).trim();
    const dir = join(pkg, "node_modules", ".cache", "egress-dlp-previous", full);
    if (!existsSync(join(dir, "src", "scan.ts"))) {
      mkdirSync(dir, { recursive: true });
      // run in the package directory, `git archive` takes paths relative to it and writes `src/…`
      const tar = execFileSync("git", ["archive", full, "--", "src"], {
        cwd: pkg,
        maxBuffer: 64 * 1024 * 1024,
        stdio: ["ignore", "pipe", "pipe"],
      });
      execFileSync("tar", ["-x", "-C", dir], { input: tar });
    }
    const mod = (await import(pathToFileURL(join(dir, "src", "scan.ts")).href)) as {
      createScanner: typeof createScanner;
    };
    return { ok: true, revision: full.slice(0, 7), createScanner: mod.createScanner };
  } catch (error) {
    return { ok: false, why: (error as Error).message.split("\n")[0] ?? "unknown error" };
  }
}
