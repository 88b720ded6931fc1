import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { codeCacheName, MAX_CODE_CACHES, requireWithCodeCache } from "./code-cache.ts";

let dir: string;
let bundle: string;
let cacheDir: string;

// A bundle with enough code for V8 to produce a real cache, and observable behaviour.
const source = (n: number) => `"use strict";
let calls = 0;
function fib(k) { return k < 2 ? k : fib(k - 1) + fib(k - 2); }
exports.run = (x) => { calls++; return fib(x) + ${n}; };
exports.calls = () => calls;
exports.where = () => [__filename, __dirname, typeof require, module.exports === exports];
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "execpolicy-code-cache-"));
  bundle = join(dir, "bundle.cjs");
  cacheDir = join(dir, "cache");
  await writeFile(bundle, source(0));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Bundle = {
  run(x: number): number;
  calls(): number;
  where(): [string, string, string, boolean];
};

const cacheFile = () => join(cacheDir, codeCacheName(bundle));

describe("requireWithCodeCache", () => {
  it("runs the bundle as CommonJS", () => {
    const m = requireWithCodeCache<Bundle>(bundle, undefined);
    expect(m.exports.run(10)).toBe(55);
    expect(m.exports.where()).toEqual([bundle, dir, "function", true]);
    expect(m.cacheHit).toBe(false);
    expect(m.cacheFile).toBeUndefined();
  });

  it("writes the cache privately after a run, and the next run uses it", async () => {
    const first = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(first.cacheHit).toBe(false);
    first.exports.run(5);
    expect(await first.save(["check"])).toBe(true);
    expect((await stat(cacheDir)).mode & 0o777).toBe(0o700);
    expect((await stat(cacheFile())).mode & 0o777).toBe(0o600);
    // no temporary files left behind
    expect(await readdir(cacheDir)).toEqual([codeCacheName(bundle)]);

    const second = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(second.cacheHit).toBe(true);
    expect(second.exports.run(10)).toBe(55);
    // nothing new: not written again
    expect(await second.save(["check"])).toBe(false);
    expect(await second.save([])).toBe(false);
  });

  it("rewrites the cache when a run used a feature it lacks, keeping the union", async () => {
    const a = requireWithCodeCache<Bundle>(bundle, cacheDir);
    await a.save(["check"]);
    const b = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(await b.save(["check", "shell"])).toBe(true);
    const header = (await readFile(cacheFile(), "latin1")).split("\n")[1] ?? "";
    expect(JSON.parse(header).features).toEqual(["check", "shell"]);
    const c = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(c.cacheHit).toBe(true);
    expect(await c.save(["shell"])).toBe(false);
  });

  it("ignores a cache whose payload was changed (checksum), and still runs correctly", async () => {
    await requireWithCodeCache<Bundle>(bundle, cacheDir).save(["check"]);
    const raw = await readFile(cacheFile());
    const flipped = Buffer.from(raw);
    const at = flipped.length - 10;
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    await writeFile(cacheFile(), flipped, { mode: 0o600 });
    const m = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(m.cacheHit).toBe(false);
    expect(m.exports.run(10)).toBe(55);
    // and replaces it with a good one
    expect(await m.save(["check"])).toBe(true);
    expect(requireWithCodeCache<Bundle>(bundle, cacheDir).cacheHit).toBe(true);
  });

  it("ignores a cache written for another version of the bundle", async () => {
    await requireWithCodeCache<Bundle>(bundle, cacheDir).save(["check"]);
    await writeFile(bundle, source(1000));
    const m = requireWithCodeCache<Bundle>(bundle, cacheDir);
    expect(m.cacheHit).toBe(false);
    expect(m.exports.run(10)).toBe(1055);
  });

  it("ignores garbage, a cache writable by others, and a symlink", async () => {
    await requireWithCodeCache<Bundle>(bundle, cacheDir).save(["check"]);
    const good = await readFile(cacheFile());

    await writeFile(cacheFile(), "not a cache at all");
    expect(requireWithCodeCache<Bundle>(bundle, cacheDir).cacheHit).toBe(false);

    await writeFile(cacheFile(), good);
    await chmod(cacheFile(), 0o666);
    expect(requireWithCodeCache<Bundle>(bundle, cacheDir).cacheHit).toBe(false);

    const elsewhere = join(dir, "elsewhere.v8cache");
    await writeFile(elsewhere, good, { mode: 0o600 });
    await rm(cacheFile());
    await symlink(elsewhere, cacheFile());
    expect(requireWithCodeCache<Bundle>(bundle, cacheDir).cacheHit).toBe(false);

    // the same bytes as a private regular file are used
    await rm(cacheFile());
    await writeFile(cacheFile(), good, { mode: 0o600 });
    expect(requireWithCodeCache<Bundle>(bundle, cacheDir).cacheHit).toBe(true);
  });

  it("does not write into a directory others may write", async () => {
    const shared = join(dir, "shared");
    await requireWithCodeCache<Bundle>(bundle, shared).save([]);
    await chmod(shared, 0o777);
    await rm(join(shared, codeCacheName(bundle)));
    expect(await requireWithCodeCache<Bundle>(bundle, shared).save(["check"])).toBe(false);
    expect(await readdir(shared)).toEqual([]);
  });

  it("keeps the newest code caches when many installs share the directory", async () => {
    await mkdir(cacheDir, { recursive: true, mode: 0o700 });
    // older caches of other installs (other bundle paths), one per second in the past
    const others = Array.from({ length: MAX_CODE_CACHES + 3 }, (_, i) => `code-x.cjs-${i}.v8cache`);
    for (const [i, n] of others.entries()) {
      await writeFile(join(cacheDir, n), "old", { mode: 0o600 });
      const t = new Date(Date.now() - (others.length - i) * 1000);
      await utimes(join(cacheDir, n), t, t);
    }
    await writeFile(join(cacheDir, "0123.json"), "{}", { mode: 0o600 }); // not a code cache
    expect(await requireWithCodeCache<Bundle>(bundle, cacheDir).save(["check"])).toBe(true);
    const left = (await readdir(cacheDir)).sort();
    expect(left.filter((n) => n.endsWith(".v8cache"))).toHaveLength(MAX_CODE_CACHES);
    expect(left).toContain(codeCacheName(bundle));
    expect(left).toContain("0123.json");
    // the newest of the others stayed, the oldest went
    expect(left).toContain(others[others.length - 1]);
    expect(left).not.toContain(others[0]);
  });

  it("names the cache after the bundle path and the running Node", () => {
    expect(codeCacheName(bundle)).toMatch(/^code-bundle\.cjs-[0-9a-f]{24}\.v8cache$/);
    expect(codeCacheName(join(dir, "other", "bundle.cjs"))).not.toBe(codeCacheName(bundle));
  });
});
