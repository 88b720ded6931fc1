/**
 * Adversarial bench (issue 17): every adversarial 1 MiB input against 1 MiB of random English
 * text, in one run. Prints per input: the median CPU time of N rounds (BENCH_ROUNDS, default 11)
 * interleaved with baseline scans, the median of the rounds' ratios to the baseline (target <= 3×; 2.5× leaves room for
 * load noise) with the lowest and highest round, the work units charged, and whether the scan was blocked by a budget. With the default budget
 * (2000 ms) and a tight one (BENCH_MAX_MS, default 50 ms), no scan may take longer than its
 * budget; inputs over budget must come back blocked.
 *
 * `pnpm bench:adversarial` runs this alone; `pnpm bench` runs it after the throughput figures.
 * BENCH_ONLY (a regular expression) runs only the inputs whose label matches it. No GC is forced
 * between scans: a full GC before each timed scan was tried, and it raised the ratios of the
 * allocating inputs by about 1.5× (not pinned down; likely V8 resizing its heap after each full
 * GC, which a gateway's steady state does not do between requests).
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { deflateRawSync, gzipSync } from "node:zlib";
import { createScanner } from "../src/scan.ts";
import { adversarialInputs, englishText, FURTHER_ROWS, knownSecrets } from "./corpus.ts";

const MB = 1024 * 1024;

export interface AdversarialSummary {
  baselineMs: number;
  /** Of the inputs of issue 17's kinds. */
  worstRatio: number;
  worstLabel: string;
  overTarget: string[];
  /** Of the further rows (FURTHER_ROWS): the worst, and those over 3×. */
  furtherWorst: number;
  furtherWorstLabel: string;
  furtherOver: string[];
  /** Within the 3× target but above 2.5×, where load noise could flip it. */
  overMargin: string[];
  overBudget: number;
  notBlocked: string[];
}

/** CPU time (user + system) of one call in ms: a busy shared machine disturbs it less than wall time. */
function cpuMs(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function runAdversarial(
  out: (line: string) => void,
  rounds = Number(process.env.BENCH_ROUNDS ?? 11),
  tightMs = Number(process.env.BENCH_MAX_MS ?? 50),
): AdversarialSummary {
  const scanner = createScanner({ knownSecrets: knownSecrets(100) });
  const tight = createScanner({ knownSecrets: knownSecrets(100), maxMs: tightMs });
  const baseline = englishText(MB);
  const inputs = adversarialInputs(
    MB,
    (d) => gzipSync(d, { level: 9 }),
    (d) => deflateRawSync(d, { level: 9 }),
  );
  for (let i = 0; i < 3; i++) scanner.scan(baseline);
  // Each input is timed interleaved with the baseline, round by round (which one goes first
  // alternates), and each round gives a ratio against the baseline scan next to it: load bursts on
  // the shared machine, and a process that changes speed during the run (V8 recompiling a shared
  // loop, a major GC), then move both sides of a ratio. The figure is the median of the rounds'
  // ratios, so one disturbed round moves it no more than any other.
  const baseRounds: number[] = [];
  for (let r = 0; r < rounds; r++) baseRounds.push(cpuMs(() => scanner.scan(baseline)));
  const baseWork = scanner.measure(baseline).work;
  const rows: { label: string; ratio: number; line: string }[] = [];
  const summary: AdversarialSummary = {
    baselineMs: 0,
    worstRatio: 0,
    worstLabel: "",
    overTarget: [],
    furtherWorst: 0,
    furtherWorstLabel: "",
    furtherOver: [],
    overMargin: [],
    overBudget: 0,
    notBlocked: [],
  };
  // BENCH_ONLY: a regular expression; only inputs whose label matches it are run
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
  for (const [label, text] of Object.entries(inputs)) {
    if (only && !only.test(label)) continue;
    // two untimed scans first: V8 re-optimises the shared loops for an input of a new shape (a
    // two-byte string after one-byte ones, say) on its first scans, and the baseline with it
    for (let w = 0; w < 2; w++) {
      scanner.scan(text);
      scanner.scan(baseline);
    }
    const inputMs: number[] = [];
    const localMs: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      let a: number;
      let b: number;
      if (r % 2 === 0) {
        b = cpuMs(() => scanner.scan(baseline));
        a = cpuMs(() => scanner.scan(text));
      } else {
        a = cpuMs(() => scanner.scan(text));
        b = cpuMs(() => scanner.scan(baseline));
      }
      inputMs.push(a);
      localMs.push(b);
      baseRounds.push(b);
      ratios.push(a / b);
    }
    const ms = median(inputMs);
    const local = median(localMs);
    const ratio = median(ratios);
    const m = scanner.measure(text);
    const budgetRule = m.findings.find((f) => f.detector === "budget")?.rule;
    let tightMax = 0;
    let outcome = "clean in budget";
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      const res = tight.scan(text);
      const wall = performance.now() - t;
      tightMax = Math.max(tightMax, wall);
      if (res.findings.some((f) => f.detector === "budget")) outcome = "blocked by budget";
      else if (res.blocked && outcome === "clean in budget") outcome = "blocked (finding)";
      if (wall > tightMs && !res.blocked) {
        outcome = "OVER BUDGET, NOT BLOCKED";
        summary.notBlocked.push(label);
      }
    }
    if (Math.max(...inputMs) > 2000) summary.overBudget++;
    rows.push({
      label,
      ratio,
      line: `${label} | ${ms.toFixed(1)} | ${local.toFixed(1)} | ${ratio.toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${m.work} | ${m.blocked ? `yes (${budgetRule ?? m.findings[0]?.rule})` : "no"} | ${tightMax.toFixed(1)} ms, ${outcome}`,
    });
  }
  summary.baselineMs = median(baseRounds);
  out(
    `adversarial baseline: 1 MiB random English text ${summary.baselineMs.toFixed(1)} ms CPU (median of ${baseRounds.length} scans), ${baseWork} work units; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  out(
    `input | CPU ms (median of ${rounds}) | baseline CPU ms (same rounds, median) | × baseline (median of the rounds' ratios; lowest–highest) | work units | blocked (rule) | with a ${tightMs} ms budget: slowest wall ms, outcome`,
  );
  for (const row of rows) {
    out(row.line);
    const ratio = row.ratio;
    if (FURTHER_ROWS.has(row.label)) {
      if (ratio > summary.furtherWorst) {
        summary.furtherWorst = ratio;
        summary.furtherWorstLabel = row.label;
      }
      if (ratio > 3) summary.furtherOver.push(`${row.label} ${ratio.toFixed(2)}×`);
      continue;
    }
    if (ratio > summary.worstRatio) {
      summary.worstRatio = ratio;
      summary.worstLabel = row.label;
    }
    if (ratio > 3) summary.overTarget.push(`${row.label} ${ratio.toFixed(2)}×`);
    else if (ratio > 2.5) summary.overMargin.push(`${row.label} ${ratio.toFixed(2)}×`);
  }
  out(
    `worst ratio: ${summary.worstRatio.toFixed(2)}× (${summary.worstLabel}; issue 17's kinds; target <= 3×, margin 2.5×); over 3×: ${summary.overTarget.join(", ") || "none"}; over 2.5×: ${summary.overMargin.join(", ") || "none"}; scans over the 2000 ms budget: ${summary.overBudget}`,
  );
  if (summary.furtherWorstLabel !== "") {
    out(
      `further rows (beyond issue 17's kinds): worst ${summary.furtherWorst.toFixed(2)}× (${summary.furtherWorstLabel}); over 3×: ${summary.furtherOver.join(", ") || "none"}`,
    );
  }
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  runAdversarial((s) => process.stdout.write(`${s}\n`));
}
