/**
 * The real-bash oracle: generated scripts are checked; every script decided `allow` is run by
 * bash in a sandbox (sandbox.ts) and each program it actually executed must be one the decision
 * listed (as a command or a wrapper) and must not be forbidden by the policy. Anything else is an
 * escape, reported with the script.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type CheckResult, checkArgv, checkShellSync } from "../../src/check.ts";
import { loadPolicySources } from "../../src/load-sources.ts";
import type { Policy } from "../../src/policy.ts";
import { loadBashParser } from "../../src/shell/parser.ts";
import { REDTEAM_DIR } from "../redteam/corpus.ts";
import { sampleScripts } from "./generate.ts";
import { type Exec, runBatch } from "./sandbox.ts";

export interface Escape {
  script: string;
  policy: string;
  exec: Exec;
  why: string;
}

export interface OracleStats {
  generated: number;
  /** Scripts decided `allow` by at least one policy (each was run). */
  executed: number;
  /** Recorded execve calls of the executed scripts. */
  execs: number;
  escapes: Escape[];
  /** Execs that could not be attributed to a script, and sandbox failures. */
  problems: string[];
}

const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

function loadPolicy(file: string): Policy {
  const path = join(REDTEAM_DIR, file);
  const r = loadPolicySources([{ path, text: readFileSync(path, "utf8") }]);
  if (r.errors.length > 0) throw new Error(`${file}: ${JSON.stringify(r.errors)}`);
  return r.policy;
}

/** The programs a decision lists: every command's program and every wrapper. */
export function listedPrograms(result: CheckResult): Set<string> {
  const listed = new Set<string>();
  for (const c of result.commands) {
    listed.add(base(c.argv[0] ?? ""));
    for (const w of c.wrappers ?? []) listed.add(base(w));
  }
  return listed;
}

/** Escapes of one executed script under one policy's `allow` decision. */
export function escapesOf(
  policy: Policy,
  policyName: string,
  script: string,
  result: CheckResult,
  execs: readonly Exec[],
): Escape[] {
  const listed = listedPrograms(result);
  const out: Escape[] = [];
  for (const exec of execs) {
    const program = base(exec.path);
    if (!listed.has(program)) {
      out.push({
        script,
        policy: policyName,
        exec,
        why: `ran ${program}, which the decision did not list`,
      });
      continue;
    }
    const argv = [program, ...exec.argv.slice(1)];
    if (checkArgv(policy, argv).decision === "forbidden")
      out.push({
        script,
        policy: policyName,
        exec,
        why: `ran forbidden ${JSON.stringify(argv.join(" "))}`,
      });
  }
  return out;
}

export interface OracleOptions {
  count: number;
  seed: number;
  /** Scripts per sandbox (one bash + strace process). */
  batchSize?: number;
  /** Sandboxes running at once. */
  parallel?: number;
  onProgress?: (done: number, stats: OracleStats) => void;
}

export async function runOracle(options: OracleOptions): Promise<OracleStats> {
  await loadBashParser();
  const policies: [string, Policy][] = [
    ["policy.rules", loadPolicy("policy.rules")],
    ["deny-only.yaml", loadPolicy("deny-only.yaml")],
  ];
  const stats: OracleStats = { generated: 0, executed: 0, execs: 0, escapes: [], problems: [] };
  const batchSize = options.batchSize ?? 1000;
  const parallel = options.parallel ?? 2;
  const chunk = 5000;
  for (let offset = 0; offset < options.count; offset += chunk) {
    const scripts = sampleScripts(Math.min(chunk, options.count - offset), options.seed + offset);
    stats.generated += scripts.length;
    const toRun: { script: string; allowed: [string, Policy, CheckResult][] }[] = [];
    for (const script of scripts) {
      const allowed: [string, Policy, CheckResult][] = [];
      for (const [name, policy] of policies) {
        const r = checkShellSync(policy, script);
        if (r.decision === "allow") allowed.push([name, policy, r]);
      }
      if (allowed.length > 0) toRun.push({ script, allowed });
    }
    const batches: (typeof toRun)[] = [];
    for (let i = 0; i < toRun.length; i += batchSize) batches.push(toRun.slice(i, i + batchSize));
    let next = 0;
    const worker = async () => {
      for (let b = next++; b < batches.length; b = next++) {
        const batch = batches[b] as typeof toRun;
        const result = await runBatch(batch.map((x) => x.script));
        if (result.exitCode !== 0)
          stats.problems.push(
            `sandbox exited with ${result.exitCode}: ${result.stderr.slice(0, 2000)}`,
          );
        for (const u of result.unattributed)
          stats.problems.push(`unattributed execve of ${u.path} ${JSON.stringify(u.argv)}`);
        batch.forEach((x, i) => {
          const execs = result.execs[i] ?? [];
          stats.executed++;
          stats.execs += execs.length;
          for (const [name, policy, r] of x.allowed)
            stats.escapes.push(...escapesOf(policy, name, x.script, r, execs));
        });
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    options.onProgress?.(offset + scripts.length, stats);
  }
  return stats;
}
