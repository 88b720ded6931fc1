/**
 * egress-dlp bench. Prints throughput on 1 MB request bodies (all token patterns + 100 known
 * secrets in every variant), secretlint's recommend preset on the same corpus in the same run,
 * adversarial inputs as a ratio of the normal time, and the peer-suite ratios.
 *
 * The machine is shared, so every figure is the best of several rounds, and the rounds of the
 * things being compared are interleaved: ratios are what to read, not absolute times.
 */
import { performance } from "node:perf_hooks";
import { lintSource } from "@secretlint/core";
import { creator as recommend } from "@secretlint/secretlint-rule-preset-recommend";
import { scanInbound } from "../src/injection.ts";
import { createScanner } from "../src/scan.ts";
import { chatBody, knownNearMiss, knownSecrets, nearMiss } from "./corpus.ts";

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
