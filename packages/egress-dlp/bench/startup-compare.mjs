// Runs bundles of bench/startup.ts interleaved, each in a fresh node process, and prints the
// median ms and page faults per step: node bench/startup-compare.mjs RUNS old.cjs new.cjs ...
import { execFileSync } from "node:child_process";

const [runs, ...files] = process.argv.slice(2);
const results = files.map(() => []);
for (let r = 0; r < Number(runs); r++) {
  files.forEach((f, i) => {
    results[i].push(JSON.parse(execFileSync(process.execPath, [f], { encoding: "utf8" })).steps);
  });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};
files.forEach((f, i) => {
  const names = Object.keys(results[i][0]);
  const cols = names.map((n) => {
    const ms = median(results[i].map((s) => s[n][0]));
    const pf = median(results[i].map((s) => s[n][1]));
    return `${n} ${ms.toFixed(1)}/${pf}`;
  });
  console.log(`${f}: ${cols.join("  ")}`);
});
