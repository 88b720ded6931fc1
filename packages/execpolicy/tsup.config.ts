import { rmSync } from "node:fs";
import { defineConfig } from "tsup";

// Two builds so the CLI's chunks never pull in what only the library API needs: an argv check
// must not load zod/yaml (native format) or web-tree-sitter (shell scripts) eagerly.
// The output directory is cleaned once here because the two builds run concurrently.
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

const common = {
  format: ["esm"] as const,
  sourcemap: true,
  target: "node20",
  platform: "node" as const,
  outDir: "dist",
  clean: false,
};

export default defineConfig([
  { ...common, entry: ["src/index.ts"], dts: { entry: "src/index.ts" } },
  {
    ...common,
    entry: ["src/cli.ts"],
    splitting: true,
    // Bundled into the CLI's chunks: importing zod and yaml from node_modules costs ~100 ms of CPU
    // (hundreds of small modules), bundled ~30 ms. The library build keeps them as dependencies.
    noExternal: ["commander", "yaml", "zod"],
    // commander and yaml are CommonJS and require Node builtins: give every chunk a `require`.
    banner: {
      js: 'import { createRequire as __bottlekitCreateRequire } from "node:module";\nconst require = __bottlekitCreateRequire(import.meta.url);',
    },
  },
]);
