/**
 * Medians of bench/start.ts (the embedded start `bottle run` makes) over fresh processes:
 *
 *   tsx bench/start-run.ts [N] [--base REV] [other.cjs ...]
 *
 * Bundles bench/start.ts as dist/bottle-controller.cjs is bundled (esbuild, CommonJS, minified,
 * workspace sources; zod, budget-store, egress-dlp and provider-registry initialised on first
 * read, as bottle-run.cjs defers them) to /tmp/gateway-start-bench/new.cjs. With `--base REV`,
 * also base.cjs: the same tree with this package's and provider-registry's sources as they are
 * at REV (git), so that what others change elsewhere is in both. Runs each bundle N times
 * (default 15), interleaved, and prints the median ms and minor page faults of each step. Wall
 * times vary with the machine's load; fault counts hardly do. BENCH_MINIFY=0 keeps names.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The part of esbuild's API used here (it is tsup's dependency, not this package's). */
interface OnArgs {
  path: string;
  importer: string;
  namespace: string;
}
interface PluginBuild {
  onResolve(
    o: { filter: RegExp; namespace?: string },
    f: (a: OnArgs) => { path: string; namespace?: string; external?: boolean } | undefined,
  ): void;
  onLoad(
    o: { filter: RegExp; namespace?: string },
    f: (
      a: OnArgs,
    ) =>
      | { contents: string; loader: "js" | "ts"; resolveDir?: string }
      | undefined
      | Promise<{ contents: string; loader: "js"; resolveDir: string }>,
  ): void;
  resolve(
    p: string,
    o: { kind: "import-statement"; resolveDir: string; namespace: string },
  ): Promise<{ path: string }>;
  esbuild: Esbuild;
}
interface Esbuild {
  build(
    o: Record<string, unknown>,
  ): Promise<{ metafile: { outputs: Record<string, { exports: string[] }> } }>;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = join(here, "..", "..", "..");
const out = "/tmp/gateway-start-bench";
mkdirSync(out, { recursive: true });
const fromTsup = createRequire(createRequire(join(here, "..", "package.json")).resolve("tsup"));
const esbuild = fromTsup("esbuild") as Esbuild;
/**
 * The libraries the controller's file takes from bottle-run.cjs (apps/bottle/tsup.config.ts,
 * SHARED and DEFERRED): each is a stub here whose getters require the library on first read, and
 * which modules read through plain property access (as a `require()` of an external), not
 * through a copy of all its exports (esbuild's __toESM for a bundled CommonJS module).
 */
const SHARED = /^(@bottlekit\/(budget-store|egress-dlp|provider-registry)|zod|yaml|commander)$/;
/** The sources `--base` takes from the other revision. */
const MINE = /^(apps\/gateway|packages\/provider-registry)\/src\//;

async function bundle(outfile: string, base: string | undefined): Promise<void> {
  await esbuild.build({
    entryPoints: [join(here, "start.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    minifyWhitespace: true,
    minifySyntax: true,
    // Names kept: the helper below is patched by its name. BENCH_MINIFY=0 keeps the layout too
    // and writes a source map (for --cpu-prof).
    ...(process.env["BENCH_MINIFY"] === "0"
      ? { minifyWhitespace: false, minifySyntax: false, sourcemap: true }
      : {}),
    conditions: ["@bottlekit/source"],
    outfile,
    logLevel: "error",
    plugins: [
      {
        name: "as-the-bin",
        setup(build: PluginBuild) {
          // The native module stays outside, required from where its owner would find it.
          build.onResolve({ filter: /^better-sqlite3$/ }, (args) => ({
            path: createRequire(args.importer).resolve(args.path),
            external: true,
          }));
          build.onResolve({ filter: SHARED }, (args) =>
            args.namespace === "deferred" ? undefined : { path: args.path, namespace: "deferred" },
          );
          build.onLoad({ filter: /.*/, namespace: "deferred" }, async (args) => {
            const lib = await build.resolve(args.path, {
              kind: "import-statement",
              resolveDir: here,
              namespace: "deferred",
            });
            const probe = await build.esbuild.build({
              entryPoints: [lib.path],
              bundle: true,
              packages: "external",
              write: false,
              metafile: true,
              format: "esm",
              platform: "node",
              conditions: ["@bottlekit/source"],
              logLevel: "silent",
            });
            const names = Object.values(probe.metafile.outputs).flatMap((o) => o.exports);
            const contents = [
              'Object.defineProperty(exports, "__bottlekitShared", { value: true });',
              "var lib;",
              `var load = () => (lib ??= require(${JSON.stringify(lib.path)}));`,
              `for (const n of ${JSON.stringify(names)})`,
              "  Object.defineProperty(exports, n, { enumerable: true, get: () => load()[n] });",
            ].join("\n");
            return { contents, loader: "js", resolveDir: dirname(lib.path) };
          });
          build.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
            const rel = relative(repo, args.path);
            const fromBase = base !== undefined && MINE.test(rel);
            let source = fromBase
              ? execFileSync("git", ["-C", repo, "show", `${base}:${rel}`], { encoding: "utf8" })
              : readFileSync(args.path, "utf8");
            // A library's import.meta.url names its own file (the bin's loader maps it to the
            // installed library): budget-store finds better-sqlite3 from there.
            if (source.includes("import.meta.url"))
              source = source.replaceAll(
                "import.meta.url",
                JSON.stringify(pathToFileURL(args.path).href),
              );
            else if (!fromBase) return undefined;
            return { contents: source, loader: "ts", resolveDir: dirname(args.path) };
          });
        },
      },
    ],
  });
  const text = readFileSync(outfile, "utf8");
  const helper = /var __toESM ?= ?\(mod, ?isNodeMode, ?target\) ?=> ?\(/;
  if (!helper.test(text)) throw new Error(`${outfile}: esbuild's __toESM helper not found`);
  writeFileSync(
    outfile,
    text.replace(helper, "var __toESM=(mod,isNodeMode,target)=>mod?.__bottlekitShared?mod:("),
  );
}

const args = process.argv.slice(2);
const baseAt = args.indexOf("--base");
const base = baseAt >= 0 ? args.splice(baseAt, 2)[1] : undefined;
const n = Number(args.shift() ?? 15);
const bundles = [join(out, "new.cjs")];
await bundle(join(out, "new.cjs"), undefined);
if (base !== undefined) {
  await bundle(join(out, "base.cjs"), base);
  bundles.unshift(join(out, "base.cjs"));
}
bundles.push(...args);

const rows = new Map<string, Record<string, [number[], number[]]>>();
for (let i = 0; i < n; i++) {
  for (const b of bundles) {
    // Without tsx's loader (NODE_OPTIONS), which would load and compile in every child.
    const { NODE_OPTIONS: _, ...env } = process.env;
    const text = execFileSync(process.execPath, [b], { encoding: "utf8", env });
    const steps = JSON.parse(text.trim().split("\n").pop() as string) as Record<
      string,
      [number, number]
    >;
    const acc = rows.get(b) ?? {};
    for (const [k, [ms, f]] of Object.entries(steps)) {
      const a = acc[k] ?? [[], []];
      acc[k] = a;
      a[0].push(ms);
      a[1].push(f);
    }
    rows.set(b, acc);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [b, acc] of rows) {
  console.log(b);
  for (const [k, [ms, f]] of Object.entries(acc)) {
    const t = median(ms).toFixed(1).padStart(7);
    console.log(`  ${k.padEnd(14)} ${t} ms ${String(median(f)).padStart(6)} faults`);
  }
}
