/**
 * egress-dlp bench. Prints throughput on 1 MB request bodies (all token patterns + 100 known
 * secrets in every variant), secretlint's recommend preset on the same corpus in the same run,
 * adversarial inputs as a ratio of the normal time, and the peer-suite ratios.
 */
import { performance } from "node:perf_hooks";
import { lintSource } from "@secretlint/core";
import { creator as recommend } from "@secretlint/secretlint-rule-preset-recommend";
import { createScanner } from "../src/scan.ts";
import { formatScore, loadNoseyParker, loadSecretlint, score } from "../test/peer.ts";
import { chatBody, knownNearMiss, knownSecrets, nearMiss } from "./corpus.ts";

const MB = 1024 * 1024;
const bodies = [1, 2, 3, 4, 5].map((seed) => chatBody(MB, seed));
const secrets = knownSecrets(100);

function time(label: string, fn: () => void, rounds: number): number {
  fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)] as number;
  process.stdout.write(`${label.padEnd(58)} ${median.toFixed(2).padStart(9)} ms\n`);
  return median;
}

const build0 = performance.now();
const scanner = createScanner({
  detectors: ["token_patterns", "known_secrets"],
  knownSecrets: secrets,
  maxMs: 60_000,
});
process.stdout.write(
  `scanner build (100 known secrets, all variants): ${(performance.now() - build0).toFixed(1)} ms\n\n`,
);

const chars = bodies.reduce((a, b) => a + b.length, 0);
const ours = time(
  `egress-dlp: 5 × 1 MB bodies`,
  () => {
    for (const b of bodies)
      if (scanner.scan(b).blocked) throw new Error("unexpected finding in clean corpus");
  },
  7,
);
const oursMBs = chars / MB / (ours / 1000);

const slConfig = {
  rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommend }],
};
const theirs = time(
  `secretlint recommend (@secretlint/core): 5 × 1 MB bodies`,
  () => {
    for (const b of bodies) {
      void lintSource({
        source: { content: b, filePath: "/body.json", ext: ".json", contentType: "text" },
        options: { config: slConfig, maskSecrets: true },
      });
    }
  },
  1,
);
// lintSource is async; measure it properly
const t0 = performance.now();
for (const b of bodies) {
  await lintSource({
    source: { content: b, filePath: "/body.json", ext: ".json", contentType: "text" },
    options: { config: slConfig, maskSecrets: true },
  });
}
const slMs = performance.now() - t0;
void theirs;
process.stdout.write(
  `${"secretlint recommend, awaited: 5 × 1 MB bodies".padEnd(58)} ${slMs.toFixed(2).padStart(9)} ms\n`,
);
const slMBs = chars / MB / (slMs / 1000);

const perBody = ours / bodies.length;
const adversarial = [
  ["near-miss token prefixes (1 MB)", nearMiss(MB)],
  ["near-miss known-secret fragments (1 MB)", knownNearMiss(MB, secrets)],
] as const;
const ratios: string[] = [];
for (const [label, text] of adversarial) {
  const ms = time(`adversarial: ${label}`, () => void scanner.scan(text), 5);
  ratios.push(`${label}: ${(ms / perBody).toFixed(2)}× normal`);
}

process.stdout.write("\n");
process.stdout.write(`throughput egress-dlp: ${oursMBs.toFixed(1)} MB/s (target >= 100)\n`);
process.stdout.write(`throughput secretlint: ${slMBs.toFixed(1)} MB/s (same corpus, same run)\n`);
process.stdout.write(`egress-dlp / secretlint: ${(oursMBs / slMBs).toFixed(2)}×\n`);
for (const r of ratios) process.stdout.write(`${r} (target <= 2×)\n`);

const tokenScanner = createScanner({ detectors: ["token_patterns"] });
process.stdout.write("\n");
process.stdout.write(
  `${formatScore(
    "noseyparker",
    score(loadNoseyParker(), (t) => tokenScanner.scan(t).findings),
  )}\n`,
);
process.stdout.write(
  `${formatScore(
    "secretlint",
    score(loadSecretlint(), (t) => tokenScanner.scan(t).findings),
  )}\n`,
);
