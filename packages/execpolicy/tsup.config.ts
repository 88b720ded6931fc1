import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import type { Plugin } from "esbuild";
import { defineConfig } from "tsup";

// Three builds. The output directory is cleaned once here because they run concurrently.
// 1. The library (ESM, dependencies stay external).
// 2. The CLI: ONE CommonJS file with everything it runs bundled in (commander, yaml, zod,
//    web-tree-sitter). The bin compiles it with V8's code cache (src/code-cache.ts), which needs
//    a single classic script; modules that only some commands need are still evaluated lazily.
// 3. The code-cache loader the bin requires first.
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

const require = createRequire(import.meta.url);

// web-tree-sitter's ESM build imports node:module dynamically, which a script run through
// node:vm cannot do; its CommonJS build does not.
const treeSitterCjs: Plugin = {
  name: "web-tree-sitter-cjs",
  setup(build) {
    build.onResolve({ filter: /^web-tree-sitter$/ }, () => ({
      path: require.resolve("web-tree-sitter"),
    }));
  },
};

// commander requires node:child_process when it loads, but only runs it for executable
// subcommands, which execpolicy does not have; loading it (with net, dgram, …) costs every run
// about 2.5 ms. Inside the CLI bundle, commander gets a proxy that loads it on first use.
const lazyChildProcess: Plugin = {
  name: "lazy-child-process",
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]commander[\\/]/.test(args.importer)
        ? { path: "lazy-child-process", namespace: "bottlekit-lazy" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "bottlekit-lazy" }, () => ({
      contents:
        'let real;\nmodule.exports = new Proxy({}, { get(_, key) { real ??= require("node:child_process"); return real[key]; } });\n',
      loader: "js",
    }));
  },
};

const common = {
  sourcemap: true,
  target: "node20",
  platform: "node" as const,
  outDir: "dist",
  clean: false,
};

export default defineConfig([
  { ...common, format: ["esm"], entry: ["src/index.ts"], dts: { entry: "src/index.ts" } },
  {
    ...common,
    format: ["cjs"],
    entry: { cli: "src/cli.ts" },
    splitting: false,
    shims: true,
    noExternal: ["@bottlekit/diagnostics", "commander", "yaml", "zod", "web-tree-sitter"],
    esbuildPlugins: [treeSitterCjs, lazyChildProcess],
    // keep `node:` specifiers, so the plugin above sees commander's `node:child_process`
    removeNodeProtocol: false,
    // Smaller source to read and scan on a run without code cache (names kept for stack traces).
    esbuildOptions(options) {
      options.minifyWhitespace = true;
      options.minifySyntax = true;
    },
  },
  { ...common, format: ["cjs"], entry: { "code-cache": "src/code-cache.ts" }, splitting: false },
]);
