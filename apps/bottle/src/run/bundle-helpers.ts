/**
 * The banner of `bottle run`'s two bundled files (tsup.config.ts; esbuild leaves it as written):
 * the helpers its plugins' code calls to load a module from the workspace library that owns it
 * (`loadedByOwner`) and to find that library's files (`metaUrlOfOwner`). Its own module so that a
 * test can run it.
 *
 * Node's JS fs.realpathSync, which its module loader uses, decides "stop here" from the process's
 * shared stat buffer, so right after a stat of a socket (a proxy or control socket: bottle run
 * makes them) it can return a symlinked path unresolved: a package then loads from
 * node_modules/@bottlekit/x/… and its own dependencies do not resolve (pnpm links them beside its
 * real directory). So the helpers realpath natively, and stat a regular file before a require
 * chain (the loader's own lstats then refill the buffer as it goes).
 */
export const OWNER_HELPERS = [
  'var __bottlekitDirOf = (pkg) => require("node:path").dirname(require("node:fs").realpathSync.native(require.resolve(pkg + "/package.json")));',
  'var __bottlekitRequireFrom = (pkg, specifier) => { const dir = __bottlekitDirOf(pkg); require("node:fs").statSync(process.execPath); return require("node:module").createRequire(dir + "/package.json")(specifier); };',
  'var __bottlekitMetaUrl = (pkg, rel) => require("node:url").pathToFileURL(require("node:path").join(__bottlekitDirOf(pkg), rel)).href;',
].join("\n");
