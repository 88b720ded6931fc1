/**
 * egress-dlp bench, one run for every figure of issue 17: throughput on 1 MB request bodies (all
 * token patterns + 100 known secrets in every variant) against secretlint's recommend preset and
 * against the previous release's scanner (BENCH_PREVIOUS, see previous.ts) on the same corpus;
 * every adversarial input as a ratio of 1 MiB of English text (adversarial.ts); start-up cost
 * (construct.ts: import, first and second createScanner, first scan); the peer suites.
 *
 * The machine is shared, so every figure is the best of several rounds, and the rounds of the
 * things being compared are interleaved: ratios are what to read, not absolute times.
 */

import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { lintSource } from "@secretlint/core";
import { creator as recommend } from "@secretlint/secretlint-rule-preset-recommend";
import { scanInbound } from "../src/injection.ts";
import { createScanner } from "../src/scan.ts";
import { chatBody, knownNearMiss, knownSecrets, nearMiss } from "./corpus.ts";
import { loadPrevious } from "./previous.ts";

const MB = 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const bodies = [1, 2, 3, 4, 5].map((seed) => chatBody(MB, seed));
const chars = bodies.reduce((a, b) => a + b.length, 0);
const secrets = knownSecrets(100);
const out = (s: string) => process.stdout.write(`${s}\n`);

const build0 = performance.now();
const scanner = createScanner({
  detectors: ["token_patterns", "known_secrets"],
  knownSecrets: secrets,
  maxMs: 60_000,
});
out(
  `scanner build (all token rules, 100 known secrets × every variant): ${(performance.now() - build0).toFixed(1)} ms`,
);

const slConfig = {
  rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommend }],
};
async function secretlintOne(b: string): Promise<void> {
  await lintSource({
    source: { content: b, filePath: "/body.json", ext: ".json", contentType: "text" },
    options: { config: slConfig, maskSecrets: true },
  });
}
function oursOne(b: string): void {
  if (scanner.scan(b).blocked) throw new Error("unexpected finding in the clean corpus");
}
/** CPU time (user + system) of `fn` in ms: steadier than wall time on a shared machine. */
function cpu(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000;
}

const adversarial = {
  "near-miss token prefixes": nearMiss(MB),
  "near-miss known-secret fragments": knownNearMiss(MB, secrets),
};
const phrases = `ignore previous instructions ${"x".repeat(501)} system prompt ${"y".repeat(501)} `;
const inboundAdversarial = phrases.repeat(Math.ceil(MB / phrases.length)).slice(0, MB);
const inboundNormal = bodies[0] as string;

// warm-up
for (const b of bodies) {
  oursOne(b);
  await secretlintOne(b);
}
const best: Record<string, number> = {};
const keep = (k: string, ms: number) => {
  best[k] = Math.min(best[k] ?? Number.POSITIVE_INFINITY, ms);
};
for (let r = 0; r < ROUNDS; r++) {
  // each body timed on its own, the two tools interleaved body by body
  let t = 0;
  for (const [i, b] of bodies.entries()) {
    t = performance.now();
    oursOne(b);
    keep(`ours ${i}`, performance.now() - t);
    t = performance.now();
    await secretlintOne(b);
    keep(`secretlint ${i}`, performance.now() - t);
    keep(
      `ours-cpu ${i}`,
      cpu(() => oursOne(b)),
    );
    const c0 = process.cpuUsage();
    await secretlintOne(b);
    const c1 = process.cpuUsage(c0);
    keep(`secretlint-cpu ${i}`, (c1.user + c1.system) / 1000);
  }
  t = performance.now();
  scanner.scan(bodies[0] as string);
  keep("normal 1 MB", performance.now() - t);
  for (const [label, text] of Object.entries(adversarial)) {
    t = performance.now();
    scanner.scan(text);
    keep(label, performance.now() - t);
  }
  t = performance.now();
  scanInbound(inboundNormal);
  keep("inbound normal", performance.now() - t);
  t = performance.now();
  scanInbound(inboundAdversarial);
  keep("inbound adversarial", performance.now() - t);
}

const sum = (prefix: string) =>
  bodies.reduce((a, _b, i) => a + (best[`${prefix} ${i}`] as number), 0);
const oursMs = sum("ours");
const slMs = sum("secretlint");
const oursMBs = chars / MB / (oursMs / 1000);
const slMBs = chars / MB / (slMs / 1000);
out("");
out(
  `outbound, 5 × 1 MB chat bodies (sum of per-body best of ${ROUNDS}): egress-dlp ${oursMs.toFixed(1)} ms, secretlint ${slMs.toFixed(1)} ms`,
);
out(`throughput egress-dlp: ${oursMBs.toFixed(1)} MB/s (target >= 100)`);
out(`throughput secretlint recommend: ${slMBs.toFixed(1)} MB/s (no known secrets, no encodings)`);
out(`egress-dlp / secretlint: ${(oursMBs / slMBs).toFixed(2)}× (target >= 1)`);
const oursCpu = sum("ours-cpu");
const slCpu = sum("secretlint-cpu");
const slRatioCpu = slCpu / oursCpu;
out(
  `CPU time, same bodies: egress-dlp ${(chars / MB / (oursCpu / 1000)).toFixed(1)} MB/s, secretlint recommend ${(chars / MB / (slCpu / 1000)).toFixed(1)} MB/s: ${slRatioCpu.toFixed(2)}× (target >= 1)`,
);
const normal = best["normal 1 MB"] as number;
for (const label of Object.keys(adversarial)) {
  const ms = best[label] as number;
  out(
    `adversarial ${label} (1 MB): ${ms.toFixed(1)} ms = ${(ms / normal).toFixed(2)}× normal (target <= 2×)`,
  );
}
out(
  `inbound injection scan: normal 1 MB ${(best["inbound normal"] as number).toFixed(1)} ms, phrases just outside the window ${(best["inbound adversarial"] as number).toFixed(1)} ms = ${((best["inbound adversarial"] as number) / (best["inbound normal"] as number)).toFixed(2)}× (target <= 2×)`,
);

// The previous release is loaded only now, and compared in rounds of its own: with its scanner
// (another copy of every hot function, and another 100-secret index) in the process during the
// secretlint rounds, this scanner measured 0.80-0.85x of its throughput without it (same corpus,
// load 1.5-1.8), which is what a process running only this scanner would never see.
const previous = await loadPrevious();
const previousScanner = previous.ok
  ? previous.createScanner({
      detectors: ["token_patterns", "known_secrets"],
      knownSecrets: secrets,
      maxMs: 60_000,
    })
  : undefined;
out(
  previous.ok
    ? `previous release: scanner of ${previous.revision} loaded for comparison`
    : `previous release: not compared (${previous.why})`,
);
let previousRatio: number | undefined;
if (previousScanner) {
  for (const b of bodies) previousScanner.scan(b);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, b] of bodies.entries()) {
      // which one goes first alternates
      const pair = [
        () =>
          keep(
            `ours-cpu-vs-previous ${i}`,
            cpu(() => oursOne(b)),
          ),
        () =>
          keep(
            `previous-cpu ${i}`,
            cpu(() => previousScanner.scan(b)),
          ),
      ];
      if ((r + i) % 2 === 1) pair.reverse();
      for (const f of pair) f();
    }
  }
  const prevCpu = sum("previous-cpu");
  const oursThen = sum("ours-cpu-vs-previous");
  previousRatio = prevCpu / oursThen;
  out(
    `CPU time, same bodies, both scanners in the process: egress-dlp ${(chars / MB / (oursThen / 1000)).toFixed(1)} MB/s, previous release ${(chars / MB / (prevCpu / 1000)).toFixed(1)} MB/s: ${previousRatio.toFixed(2)}× the previous throughput (target >= 1)`,
  );
}

// The adversarial inputs run in a fresh process (same Node flags): after the throughput rounds
// above, V8's type feedback on the shared hot loops reflects chat bodies and secretlint, and the
// ratios measured on top of that were seen to be two or three times those of a fresh process.
/** Runs a bench script of this folder in a fresh process (same Node flags); its stdout, echoed. */
function freshProcess(script: string): string {
  out("");
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(new URL(script, import.meta.url))],
    { encoding: "utf8", env: process.env, maxBuffer: 16 * 1024 * 1024 },
  );
  process.stdout.write(child.stdout);
  if (child.status !== 0) process.stderr.write(child.stderr);
  return child.stdout;
}
const adversarialOut = freshProcess("./adversarial.ts");
const worst = /^worst ratio: .*$/m.exec(adversarialOut)?.[0] ?? "adversarial bench failed";
const further = /^further rows .*$/m.exec(adversarialOut)?.[0] ?? "";

// Start-up cost (import, first and second createScanner, first scan) in fresh plain-node processes.
const construct = freshProcess("./construct.ts");
const constructLine =
  /^construct: import \+ three.*$/m.exec(construct)?.[0] ?? "construct bench failed";
const secondLine = /^ {2}second createScanner.*$/m.exec(construct)?.[0]?.trim() ?? "";

out("");
out("summary (this run):");
out(
  `  throughput vs secretlint recommend: ${slRatioCpu.toFixed(2)}× in CPU time, ${(oursMBs / slMBs).toFixed(2)}× in wall time (target >= 1)`,
);
out(
  `  throughput vs previous release: ${previousRatio === undefined ? "not measured" : `${previousRatio.toFixed(2)}×`} (target >= 1)`,
);
out(`  adversarial classes against 1 MiB of English text: ${worst}`);
if (further) out(`  ${further}`);
out(`  ${constructLine.replace(/^construct: /, "start-up: ")}; ${secondLine}`);

// The peer-suite loader is imported only now: merely loading the `yaml` package (a dev dependency
// it uses) was measured to slow the scanner's loops by about 15% for the rest of the process, and
// the library itself never loads it. (A gateway process that loads yaml would see the same.)
const { formatScore, loadNoseyParker, loadNoseyParkerRules, loadSecretlint, score } = await import(
  "../test/peer.ts"
);
const tokenScanner = createScanner({ detectors: ["token_patterns"] });
out("");
out(
  formatScore(
    "noseyparker",
    score(loadNoseyParker(), (t) => tokenScanner.scan(t).findings, loadNoseyParkerRules()),
  ),
);
out(
  formatScore(
    "secretlint",
    score(loadSecretlint(), (t) => tokenScanner.scan(t).findings),
  ),
);
