// Figures for the diagnostics helpers on the paths CLIs take: did-you-mean over a large key set
// (a config error with 1,000 candidate names) and line:col lookups in a 1 MB document.
import { lineColAt, suggest } from "../src/index.ts";

function time(label: string, runs: number, fn: () => void): void {
  for (let i = 0; i < Math.min(runs, 50); i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
  samples.sort((a, b) => a - b);
  const p = (q: number) => (samples[Math.floor(q * (samples.length - 1))] as number).toFixed(1);
  console.log(`${label.padEnd(48)} p50 ${p(0.5)} µs  p99 ${p(0.99)} µs`);
}

const candidates = Array.from({ length: 1000 }, (_, i) => `provider_${i}_model_name`);
time("suggest: 1 input vs 1,000 candidates", 500, () => {
  suggest("provider_50_modle_name", candidates);
});
const doc = "key: value\n".repeat(100_000);
time("lineColAt: offset at the end of 1.1 MB", 200, () => {
  lineColAt(doc, doc.length - 1);
});
