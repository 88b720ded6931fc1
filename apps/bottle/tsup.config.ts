import { readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Plugin } from "esbuild";
import { defineConfig } from "tsup";

// Three builds; dist/ is cleaned once here because they run concurrently.
// 1. The library and the CLI (ESM; dependencies stay external): every command but `run`.
// 2. `bottle run`: ONE CommonJS file, dist/bottle-run.cjs, with the CLI and everything `run`
//    composes (the workspace libraries from source, and their npm dependencies) bundled in. The
//    bin compiles it with V8's code cache (src/run/code-cache.ts), which needs a single classic
//    script. Loading ~900 module files one by one (resolution, package.json reads, compiling)
//    was most of `bottle run`'s start-up. This departs from "apps do not bundle libraries" for
//    this one bin path only; the package still depends on the libraries (they provide the
//    native better-sqlite3 and the egress relay at run time).
// 3. The code-cache loader the bin requires first.
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

const here = dirname(new URL(import.meta.url).pathname);
const workspaceRoot = join(here, "..", "..");
const ownPackage = JSON.parse(readFileSync(join(here, "package.json"), "utf8")) as {
  name: string;
  dependencies: Record<string, string>;
};

/** Left out of the bundle: the dashboard's UI (ink loads yoga's wasm with top-level await). */
const NOT_BUNDLED = ["ink", "react", "react-dom", "yoga-layout", "ink-testing-library"];

/** Workspace package (name and directory) a source file belongs to, if any. */
function workspacePackage(file: string): { name: string; dir: string } | undefined {
  const m = /^(.*\/(?:packages|apps)\/[^/]+)\/src\//.exec(file);
  if (!m || file.includes("/node_modules/")) return undefined;
  const dir = m[1] as string;
  return {
    name: (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string }).name,
    dir,
  };
}

/**
 * Native and optional modules stay outside the bundle but are loaded as their own package loads
 * them: pnpm gives each package only its own dependencies, so `better-sqlite3` is found from
 * @bottlekit/budget-store's directory, not from this app's.
 */
const LOADED_BY_OWNER = /^(better-sqlite3|postgres|web-tree-sitter|tsx)(\/.*)?$/;
const loadedByOwner: Plugin = {
  name: "bottlekit-loaded-by-owner",
  setup(build) {
    build.onResolve({ filter: LOADED_BY_OWNER }, (args) => {
      const owner = workspacePackage(args.importer);
      if (!owner) return undefined;
      return { path: `${owner.name}\0${args.path}`, namespace: "bottlekit-owner" };
    });
    build.onLoad({ filter: /.*/, namespace: "bottlekit-owner" }, (args) => {
      const [pkg, specifier] = args.path.split("\0") as [string, string];
      return {
        contents: `module.exports = __bottlekitRequireFrom(${JSON.stringify(pkg)}, ${JSON.stringify(specifier)});`,
        loader: "js",
      };
    });
  },
};

/**
 * `import.meta.url` in another workspace library names a file of that library (the egress relay
 * binary in its dist/, tree-sitter's wasm): it becomes that file's real location in the installed
 * library, found from this app (each such library must be one of its dependencies). This app's
 * own files keep tsup's shim (the bundle's URL, in the same package).
 */
const metaUrlOfOwner: Plugin = {
  name: "bottlekit-meta-url-of-owner",
  setup(build) {
    build.onLoad({ filter: /\/(packages|apps)\/[^/]+\/src\/.*\.ts$/ }, (args) => {
      const owner = workspacePackage(args.path);
      if (!owner || owner.name === ownPackage.name) return undefined;
      const source = readFileSync(args.path, "utf8");
      if (!source.includes("import.meta")) return undefined;
      if (!(owner.name in ownPackage.dependencies)) {
        throw new Error(
          `${relative(workspaceRoot, args.path)} uses import.meta but ${owner.name} is not a dependency of ${ownPackage.name}`,
        );
      }
      const rel = relative(owner.dir, args.path);
      const contents = source.replaceAll(
        "import.meta.url",
        `__bottlekitMetaUrl(${JSON.stringify(owner.name)}, ${JSON.stringify(rel)})`,
      );
      if (contents.includes("import.meta")) {
        throw new Error(`${relative(workspaceRoot, args.path)}: import.meta other than .url`);
      }
      return { contents, loader: "ts" };
    });
  },
};

/** Helpers of the two plugins above (a banner: esbuild leaves it as written). */
const OWNER_HELPERS = [
  'var __bottlekitDirOf = (pkg) => require("node:path").dirname(require.resolve(pkg + "/package.json"));',
  'var __bottlekitRequireFrom = (pkg, specifier) => require("node:module").createRequire(__bottlekitDirOf(pkg) + "/package.json")(specifier);',
  'var __bottlekitMetaUrl = (pkg, rel) => require("node:url").pathToFileURL(require("node:path").join(__bottlekitDirOf(pkg), rel)).href;',
].join("\n");

const common = {
  sourcemap: true,
  target: "node20",
  platform: "node" as const,
  outDir: "dist",
  clean: false,
};

export default defineConfig([
  {
    ...common,
    entry: ["src/index.ts", "src/cli.ts"],
    format: ["esm"],
    dts: { entry: "src/index.ts" },
  },
  {
    ...common,
    entry: { "bottle-run": "src/run/bin-entry.ts" },
    format: ["cjs"],
    splitting: false,
    shims: true,
    noExternal: [new RegExp(`^(?!(?:${NOT_BUNDLED.join("|")})(?:/|$))`)],
    external: NOT_BUNDLED,
    esbuildPlugins: [loadedByOwner, metaUrlOfOwner],
    banner: { js: OWNER_HELPERS },
    esbuildOptions(options) {
      // The workspace libraries from source, as the tests run them.
      options.conditions = ["@bottlekit/source"];
      // Less source to read and scan when there is no code cache yet (names kept for traces).
      options.minifyWhitespace = true;
      options.minifySyntax = true;
      // ASCII only (strings escaped, licence comments in dist/bottle-run.cjs.LEGAL.txt): the
      // loader then decodes it as Latin-1, several times cheaper than UTF-8 (code-cache.ts).
      options.charset = "ascii";
      options.legalComments = "external";
    },
  },
  {
    ...common,
    entry: { "code-cache": "src/run/code-cache.ts" },
    format: ["cjs"],
    splitting: false,
  },
]);
