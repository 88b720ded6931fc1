import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CODE_CACHE_ENV, codeCacheDir, codeCacheFileName, requireBundle } from "./code-cache.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bk-code-cache-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A small CommonJS "bundle" and an empty cache directory of its own. */
function fixture(): { bundle: string; cacheDir: string } {
  const dir = path.join(root, `case-${n++}`);
  fs.mkdirSync(dir);
  const bundle = path.join(dir, "bundle.cjs");
  fs.writeFileSync(
    bundle,
    [
      "const path = require('node:path');",
      "function twice(x) { return x * 2; }",
      "exports.value = twice(21);",
      "exports.dir = __dirname;",
      "exports.base = path.basename(__filename);",
      "exports.load = () => import('node:os').then((m) => typeof m.cpus);",
    ].join("\n"),
  );
  return { bundle, cacheDir: path.join(dir, "cache") };
}

describe("requireBundle", () => {
  it("runs the file as CommonJS, writes a cache after a miss, then hits it", async () => {
    const { bundle, cacheDir } = fixture();
    const first = requireBundle<{ value: number; dir: string; base: string }>(bundle, cacheDir);
    expect(first.exports).toMatchObject({
      value: 42,
      dir: path.dirname(bundle),
      base: "bundle.cjs",
    });
    expect(first.cache).toBe("miss");
    expect(first.save()).toBe(true);
    const file = first.cacheFile as string;
    expect(path.basename(file)).toBe(codeCacheFileName(bundle));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);

    const second = requireBundle<{ value: number; load(): Promise<string> }>(bundle, cacheDir);
    expect(second.cache).toBe("hit");
    expect(second.exports.value).toBe(42);
    // import() inside the bundle reaches Node's loader.
    await expect(second.exports.load()).resolves.toBe("function");
    expect(second.save()).toBe(false); // nothing new to store
  });

  it("decodes a file with non-ASCII bytes as UTF-8, on a miss and on a hit", () => {
    const dir = path.join(root, `case-${n++}`);
    fs.mkdirSync(dir);
    const bundle = path.join(dir, "bundle.cjs");
    fs.writeFileSync(bundle, "exports.word = 'caf\u00e9 \u2713';\n", "utf8");
    const cacheDir = path.join(dir, "cache");
    const first = requireBundle<{ word: string }>(bundle, cacheDir);
    expect(first.exports.word).toBe("caf\u00e9 \u2713");
    expect(first.save()).toBe(true);
    const second = requireBundle<{ word: string }>(bundle, cacheDir);
    expect(second.cache).toBe("hit");
    expect(second.exports.word).toBe("caf\u00e9 \u2713");
  });

  it("the provided modules answer the bundle's require before its own resolution", () => {
    const { bundle, cacheDir } = fixture();
    fs.appendFileSync(bundle, "\nexports.shared = require('shared-thing');\n");
    const shared = { marker: 1 };
    const r = requireBundle<{ shared: unknown; base: string }>(bundle, cacheDir, {
      "shared-thing": shared,
    });
    expect(r.exports.shared).toBe(shared);
    expect(r.exports.base).toBe("bundle.cjs"); // node:path still resolved as usual
  });

  it("without a cache directory, runs the file and stores nothing", () => {
    const { bundle } = fixture();
    const r = requireBundle<{ value: number }>(bundle, undefined);
    expect(r.exports.value).toBe(42);
    expect(r.cache).toBe("off");
    expect(r.save()).toBe(false);
  });

  it("ignores a cache that others may write, a symlink, a changed bundle or a changed payload", () => {
    const { bundle, cacheDir } = fixture();
    const warm = requireBundle(bundle, cacheDir);
    warm.save();
    const file = warm.cacheFile as string;
    const good = fs.readFileSync(file);

    fs.chmodSync(file, 0o666);
    expect(requireBundle(bundle, cacheDir).cache).toBe("miss");
    fs.chmodSync(file, 0o600);
    expect(requireBundle(bundle, cacheDir).cache).toBe("hit");

    fs.chmodSync(cacheDir, 0o777);
    expect(requireBundle(bundle, cacheDir).cache).toBe("miss");
    fs.chmodSync(cacheDir, 0o700);

    const elsewhere = path.join(path.dirname(cacheDir), "elsewhere.v8cache");
    fs.renameSync(file, elsewhere);
    fs.symlinkSync(elsewhere, file);
    expect(requireBundle(bundle, cacheDir).cache).toBe("miss");
    fs.rmSync(file);

    const tampered = Buffer.from(good);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    fs.writeFileSync(file, tampered, { mode: 0o600 });
    expect(requireBundle(bundle, cacheDir).cache).toBe("miss");

    fs.writeFileSync(file, good, { mode: 0o600 });
    expect(requireBundle(bundle, cacheDir).cache).toBe("hit");
    fs.appendFileSync(bundle, "\nexports.more = 1;\n");
    const changed = requireBundle<{ more: number }>(bundle, cacheDir);
    expect(changed.cache).toBe("miss");
    expect(changed.exports.more).toBe(1);
  });
});

describe("codeCacheDir", () => {
  it("follows the override, then XDG_CACHE_HOME (absolute only), then HOME", () => {
    expect(codeCacheDir({ [CODE_CACHE_ENV]: "off", HOME: "/h" })).toBeUndefined();
    expect(codeCacheDir({ [CODE_CACHE_ENV]: "", HOME: "/h" })).toBeUndefined();
    expect(codeCacheDir({ [CODE_CACHE_ENV]: "c", HOME: "/h" }, "/w")).toBe("/w/c");
    expect(codeCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" })).toBe("/x/bottlekit/bottle");
    expect(codeCacheDir({ XDG_CACHE_HOME: "rel", HOME: "/h" })).toBe("/h/.cache/bottlekit/bottle");
    expect(codeCacheDir({})).toBeUndefined();
  });
});
