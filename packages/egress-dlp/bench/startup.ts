/**
 * The steps `bottle run` takes through this package on its critical path (issue 15), in one fresh
 * process: the module's import; a `known_secrets` scanner with no known secret; one with a known
 * secret and the 24 short scans of the probe's credential check; the gateway's scanner
 * (token_patterns and known_secrets); a proxy session's scanner (every outbound detector). Prints
 * one JSON line: milliseconds and minor page faults per step (on the Firecracker VM every fresh
 * page costs ~15 µs, so faults are the figure to compare).
 *
 * Bundle it the way the bin is bundled (esbuild, the one tsup uses), then compare bundles with
 * bench/startup-compare.mjs:
 *   esbuild bench/startup.ts --bundle --platform=node --format=cjs --minify \
 *     --conditions=@bottlekit/source --outfile=/tmp/dlp/new.cjs
 */

const steps: Record<string, [number, number]> = {};
let t0 = performance.now();
let f0 = process.resourceUsage().minorPageFault;
function step(name: string): void {
  const t = performance.now();
  const f = process.resourceUsage().minorPageFault;
  steps[name] = [Math.round((t - t0) * 100) / 100, f - f0];
  t0 = t;
  f0 = f;
}

const SECRET = { name: "ANTHROPIC_API_KEY", value: "sk-ant-api03-Zq9Lm2Xw7Rt4Yp1Vn8Qa5Bc3" };
const ENV = [
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "/home/agent",
  "agent",
  "xterm-256color",
  "C.UTF-8",
  "/bin/bash",
];

async function main(): Promise<void> {
  // What the bin has loaded before this package: zod, diagnostics and crypto are not its cost.
  await import("zod");
  await import("@bottlekit/diagnostics");
  await import("node:crypto");
  step("pre");
  const m = await import("../src/index.ts");
  step("import");
  m.createScanner({ detectors: ["known_secrets"], knownSecrets: [] });
  step("known0");
  const known = m.createScanner({ detectors: ["known_secrets"], knownSecrets: [SECRET] });
  step("known1");
  let blocked = 0;
  for (let i = 0; i < 24; i++) {
    if (known.scan(`${ENV[i % ENV.length]}${i}`, `env.V${i}`).blocked) blocked++;
  }
  step("scan24");
  m.createScanner({ detectors: ["token_patterns", "known_secrets"], knownSecrets: [SECRET] });
  step("gateway");
  m.createScanner({
    detectors: m.OUTBOUND_DETECTORS,
    knownSecrets: [{ ...SECRET, name: "credential:anthropic" }],
  });
  step("all");
  process.stdout.write(`${JSON.stringify({ steps, blocked })}\n`);
}

// a function, not top-level await: the bin's bundle is CommonJS
void main();
