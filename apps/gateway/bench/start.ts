/**
 * One embedded start, as `bottle run`'s controller does it (apps/bottle/src/run/controller.ts):
 * the egress proxy's module, then `import("@bottlekit/gateway")`, then `startGateway` on the
 * zero-config path with the proxy door, lazily, on a port the system picks. Prints one JSON line:
 * ms and minor page faults per step. First-load cost is the point, so each run is a fresh
 * process; bench/start-run.ts bundles this file as the bin is bundled and takes medians.
 * BENCH_KEY=1 gives the environment one provider key (zero-config with one route).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const steps: Record<string, [number, number]> = {};
let lastT = performance.now();
let lastF = process.resourceUsage().minorPageFault;
// BENCH_MODULES=1: also print (stderr) the Node built-ins each step loaded.
const moduleLoadList = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
let lastModules = moduleLoadList.length;
function step(name: string): void {
  if (process.env["BENCH_MODULES"] === "1") {
    const loaded = moduleLoadList.slice(lastModules).filter((m) => m.startsWith("NativeModule "));
    process.stderr.write(`${name}: ${loaded.map((m) => m.slice(13)).join(" ")}\n`);
    lastModules = moduleLoadList.length;
    // Per-module init cost (self ms, self faults), when the bundle records it (a debug build
    // whose __esm helper fills globalThis.__initStats).
    const stats = (globalThis as { __initStats?: [string, number, number][] }).__initStats;
    if (stats !== undefined) {
      for (const [file, ms, faults] of stats.sort((a, b) => b[2] - a[2]).slice(0, 25))
        process.stderr.write(
          `  ${faults.toString().padStart(5)} ${ms.toFixed(2).padStart(6)} ms ${file}\n`,
        );
      stats.length = 0;
    }
  }
  const t = performance.now();
  const f = process.resourceUsage().minorPageFault;
  steps[name] = [t - lastT, f - lastF];
  lastT = t;
  lastF = f;
}

const home = mkdtempSync(join(tmpdir(), "gw-start-bench-"));
const env: NodeJS.ProcessEnv = {
  PATH: process.env["PATH"],
  HOME: home,
  ...(process.env["BENCH_KEY"] === "1"
    ? { ANTHROPIC_API_KEY: "sk-ant-api03-BENCHbenchBENCHbench0123456789abcdef" }
    : {}),
};
async function main(): Promise<void> {
  // What bottle-run.cjs has loaded before its controller's (the CLI, manifests); a read of an
  // export initialises a library the bundle defers.
  void (await import("commander")).Command;
  void (await import("yaml")).parseDocument;
  await import("@bottlekit/diagnostics");
  await import("@bottlekit/manifest");
  step("setup");
  await import("@bottlekit/egress-proxy");
  step("proxy-init");
  const { startGateway } = await import("@bottlekit/gateway");
  step("gateway-init");
  // The same module instance as the package's (one source file): its config step alone, cold.
  const { resolveConfig } = await import("../src/compose.ts");
  await resolveConfig({ env: { ...env, BOTTLEKIT_HOME: home } });
  step("resolveConfig");
  const gateway = await startGateway({
    proxyDoor: true,
    proxyControlSocket: false,
    lazyStart: true,
    listen: "127.0.0.1:0",
    env: { ...env, BOTTLEKIT_HOME: home },
  });
  step("startGateway");
  await gateway.ready();
  step("ready");
  await gateway.close(0);
  step("close");
  rmSync(home, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(steps)}\n`);
}

// CommonJS (as the bin is bundled) has no top-level await.
void main();
