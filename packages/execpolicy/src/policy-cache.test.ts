import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { cacheDirFromEnv } from "./cache-dir.ts";
import { checkArgv } from "./check.ts";
import { parseRulesFile } from "./codex-rules.ts";
import { loadPolicyFiles } from "./load.ts";
import { buildNativePolicy, isNormalizedNativePolicy, normalizeRulesFile } from "./native-build.ts";
import { normalizeNativePolicy } from "./native-format.ts";
import {
  cacheKey,
  MAX_CACHE_ENTRIES,
  readCachedPolicy,
  writeCachedPolicy,
} from "./policy-cache.ts";

// Counts how often YAML parsing + zod validation runs: a cache hit must not run it.
const normalizeCalls = vi.hoisted(() => ({ n: 0 }));
vi.mock("./native-format.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("./native-format.ts")>();
  return {
    ...real,
    normalizeNativePolicy: (text: string, file: string) => {
      normalizeCalls.n++;
      return real.normalizeNativePolicy(text, file);
    },
  };
});

const example = new URL("../examples/policy.yaml", import.meta.url).pathname;
let root: string;
let cacheDir: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "execpolicy-cache-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  cacheDir = join(root, `cache-${n++}`);
  normalizeCalls.n = 0;
});

const POLICY = `version: 1
default: forbidden
rules:
  - pattern: [terraform]
    decision: prompt
    except: [{ pattern: [terraform, [fmt, validate]], decision: allow }]
  - pattern: [git, push]
    decision: forbidden
    options_anywhere: true
    justification: no pushing
  - pattern: [rm, "-*r*"]
    decision: forbidden
    match: ["rm -rf x"]
host_executables: { git: [/usr/bin/git] }
network: [{ host: registry.npmjs.org, protocol: https, decision: allow }]
`;

async function policyFile(name: string, text: string): Promise<string> {
  const path = join(root, name);
  await writeFile(path, text);
  return path;
}

const ARGVS = [
  ["terraform", "fmt"],
  ["terraform", "apply"],
  ["git", "-C", "x", "push"],
  ["rm", "-fr", "d"],
  ["ls"],
  ["/usr/bin/git", "push"],
];
const decisions = (r: Awaited<ReturnType<typeof loadPolicyFiles>>) =>
  ARGVS.map((a) => checkArgv(r.policy, a, { resolveHostExecutables: true }));

describe("compiled-policy cache", () => {
  it("cold load writes a private entry; a warm load skips YAML + zod and gives the same result", async () => {
    const path = await policyFile("p.yaml", POLICY);
    const plain = await loadPolicyFiles([path, example]);
    expect(normalizeCalls.n).toBe(2);
    normalizeCalls.n = 0;

    const cold = await loadPolicyFiles([path, example], { cacheDir });
    expect(normalizeCalls.n).toBe(2);
    expect(cold.cache).toEqual({ dir: cacheDir, hits: [], written: [path, example] });
    const entries = await readdir(cacheDir);
    expect(entries.sort()).toEqual(
      [cacheKey(await readFile(path), "native"), cacheKey(await readFile(example), "native")]
        .map((k) => `${k}.json`)
        .sort(),
    );
    expect((await stat(cacheDir)).mode & 0o777).toBe(0o700);
    for (const e of entries) expect((await stat(join(cacheDir, e))).mode & 0o777).toBe(0o600);

    normalizeCalls.n = 0;
    const warm = await loadPolicyFiles([path, example], { cacheDir });
    expect(normalizeCalls.n).toBe(0);
    expect(warm.cache).toEqual({ dir: cacheDir, hits: [path, example], written: [] });
    for (const r of [cold, warm]) {
      expect(r.errors).toEqual(plain.errors);
      expect(r.warnings).toEqual(plain.warnings);
      expect(r.files).toEqual(plain.files);
      expect(r.policy.rules()).toEqual(plain.policy.rules());
      expect(r.policy.networkRules).toEqual(plain.policy.networkRules);
      expect([...r.policy.hostExecutables]).toEqual([...plain.policy.hostExecutables]);
      expect(r.policy.defaultDecision).toBe(plain.policy.defaultDecision);
      expect(decisions(r)).toEqual(decisions(plain));
    }
  });

  it("a changed file is a miss: an entry is never trusted across content changes", async () => {
    const path = await policyFile("change.yaml", POLICY);
    await loadPolicyFiles([path], { cacheDir });
    await writeFile(path, POLICY.replace("decision: prompt", "decision: forbidden"));
    normalizeCalls.n = 0;
    const r = await loadPolicyFiles([path], { cacheDir });
    expect(normalizeCalls.n).toBe(1);
    expect(r.cache?.hits).toEqual([]);
    expect(checkArgv(r.policy, ["terraform", "apply"]).decision).toBe("forbidden");
  });

  it("the same bytes under another path report the new path", async () => {
    const a = await policyFile("a.yaml", POLICY);
    const b = await policyFile("b.yaml", POLICY);
    await loadPolicyFiles([a], { cacheDir });
    const r = await loadPolicyFiles([b], { cacheDir });
    expect(r.cache?.hits).toEqual([b]);
    expect(checkArgv(r.policy, ["git", "push"]).matchedRules[0]?.source).toBe(`${b}:7:5`);
  });

  it("examples are checked on every load, against the host executables of earlier files", async () => {
    const first = await policyFile("1.yaml", "version: 1\nhost_executables: { git: [] }\n");
    const second = await policyFile(
      "2.yaml",
      "version: 1\nrules:\n  - pattern: [git]\n    match: [/usr/bin/git status]\n",
    );
    const alone = await loadPolicyFiles([second], { cacheDir });
    expect(alone.errors).toEqual([]);
    const after = await loadPolicyFiles([first, second], { cacheDir });
    expect(after.cache?.hits).toEqual([second]);
    expect(after.errors.map((e) => [e.file, e.kind])).toEqual([[second, "example"]]);
  });

  it("files that fail to load are not cached and fail the same way every time", async () => {
    const bad = await policyFile(
      "bad.yaml",
      "version: 1\nrules:\n  - pattern: [git]\n    decison: allow\n",
    );
    const one = await loadPolicyFiles([bad], { cacheDir });
    const two = await loadPolicyFiles([bad], { cacheDir });
    expect(one.errors).toHaveLength(1);
    expect(two.errors).toEqual(one.errors);
    expect(two.cache).toEqual({ dir: cacheDir, hits: [], written: [] });
  });

  it("corrupt, foreign or tampered entries are ignored and rebuilt (fails closed)", async () => {
    const path = await policyFile("c.yaml", POLICY);
    const key = cacheKey(await readFile(path), "native");
    const entry = join(cacheDir, `${key}.json`);
    const plain = await loadPolicyFiles([path]);
    await loadPolicyFiles([path], { cacheDir });
    const good = JSON.parse(await readFile(entry, "utf8"));
    const bad = [
      "",
      "{",
      "null",
      JSON.stringify(good).slice(0, -20),
      JSON.stringify({ ...good, key: "0".repeat(64) }), // stored under another key
      JSON.stringify({ ...good, format: "other" }),
      JSON.stringify({ ...good, policy: { ...good.policy, extra: 1 } }),
      JSON.stringify({ ...good, policy: { ...good.policy, default: "maybe" } }),
      JSON.stringify({
        ...good,
        policy: { ...good.policy, rules: [{ ...good.policy.rules[0], rest: [["[unterminated"]] }] },
      }),
      JSON.stringify({
        ...good,
        policy: { ...good.policy, rules: [{ ...good.policy.rules[0], decision: "deny" }] },
      }),
      JSON.stringify({
        ...good,
        policy: { ...good.policy, hostExecutables: [["git", ["relative/git"]]] },
      }),
    ];
    for (const text of bad) {
      await writeFile(entry, text, { mode: 0o600 });
      await chmod(entry, 0o600);
      normalizeCalls.n = 0;
      const r = await loadPolicyFiles([path], { cacheDir });
      expect(normalizeCalls.n, text.slice(0, 80)).toBe(1);
      expect(r.cache?.written).toEqual([path]);
      expect(decisions(r)).toEqual(decisions(plain));
      expect(await readCachedPolicy(cacheDir, key)).toEqual(good.policy); // rebuilt
    }
    // a group-writable entry could have been written by someone else
    await chmod(entry, 0o620);
    expect(await readCachedPolicy(cacheDir, key)).toBeUndefined();
    // a symlink is never followed
    await rm(entry);
    const elsewhere = join(root, "elsewhere.json");
    await writeFile(elsewhere, JSON.stringify(good), { mode: 0o600 });
    await symlink(elsewhere, entry);
    expect(await readCachedPolicy(cacheDir, key)).toBeUndefined();
  });

  it("a cache directory that cannot be written only costs the cache", async () => {
    const path = await policyFile("ro.yaml", POLICY);
    const notADir = await policyFile("not-a-dir", "x");
    const r = await loadPolicyFiles([path], { cacheDir: join(notADir, "cache") });
    expect(r.errors).toEqual([]);
    expect(r.cache?.written).toEqual([]);
    expect(checkArgv(r.policy, ["git", "push"]).decision).toBe("forbidden");
  });

  it("keeps at most MAX_CACHE_ENTRIES entries", async () => {
    await mkdir(cacheDir, { recursive: true, mode: 0o700 });
    const value = { hostExecutables: [], rules: [], network: [] };
    for (let i = 0; i < MAX_CACHE_ENTRIES + 5; i++)
      expect(await writeCachedPolicy(cacheDir, cacheKey(`k${i}`, "native"), value)).toBe(true);
    const left = (await readdir(cacheDir)).filter((f) => f.endsWith(".json"));
    expect(left.length).toBe(MAX_CACHE_ENTRIES);
  });

  it("normalised policies survive a JSON round trip and pass the entry check (property)", () => {
    const token = fc.oneof(
      fc.constantFrom("push", "-*r*", "fmt", "a?", "[ab]c", "x\\*", "-C"),
      fc.string({ minLength: 1, maxLength: 6 }),
    );
    const position = fc.oneof(token, fc.array(token, { minLength: 1, maxLength: 3 }));
    const program = fc.constantFrom("git", "rm", "terraform", "npm");
    const decision = fc.constantFrom("allow", "prompt", "forbidden");
    const rule = fc.record(
      {
        pattern: fc.tuple(program, fc.array(position, { maxLength: 3 })).map(([p, r]) => [p, ...r]),
        decision,
        justification: fc.constantFrom("why", "é ✓"),
        options_anywhere: fc.oneof(fc.boolean(), fc.constant(["-C", "-c"])),
        max_args: fc.nat(4),
      },
      { requiredKeys: ["pattern"] },
    );
    const doc = fc.record(
      {
        version: fc.constant(1),
        default: decision,
        rules: fc.array(rule, { maxLength: 5 }),
        host_executables: fc.constant({ git: ["/usr/bin/git"] }),
      },
      { requiredKeys: ["version"] },
    );
    const argv = fc.array(fc.constantFrom("git", "rm", "push", "-rf", "-C", "x", "fmt", "ac"), {
      minLength: 1,
      maxLength: 5,
    });
    fc.assert(
      fc.property(doc, fc.array(argv, { maxLength: 8 }), (d, argvs) => {
        let normalized: ReturnType<typeof normalizeNativePolicy>;
        try {
          // JSON is YAML: the generated document is the policy file
          normalized = normalizeNativePolicy(JSON.stringify(d), "g.yaml");
        } catch {
          return; // an invalid file (e.g. a bad glob) is never cached
        }
        const copy: unknown = JSON.parse(JSON.stringify(normalized));
        expect(isNormalizedNativePolicy(copy)).toBe(true);
        const direct = buildNativePolicy(normalized, "g.yaml");
        const viaCache = buildNativePolicy(copy as typeof normalized, "g.yaml");
        expect(viaCache.exampleFailures).toEqual(direct.exampleFailures);
        for (const a of argvs)
          expect(checkArgv(viaCache.policy, a)).toEqual(checkArgv(direct.policy, a));
      }),
      { numRuns: 200 },
    );
  });
});

describe("Codex .rules files in the cache", () => {
  it("a warm load skips the Starlark evaluation and gives the same policy, examples included", async () => {
    const host = await policyFile("0.rules", `host_executable(name="git", paths=["/usr/bin/git"])`);
    const rules = await policyFile(
      "1.rules",
      [
        `for c in [["git", "push"], ["rm"]]:`,
        `    prefix_rule(pattern=c, decision="forbidden", justification="no " + c[0])`,
        `prefix_rule(pattern=[["git", "hg"], "*", "[a]", "x\\\\y"], match=[["git", "*", "[a]", "x\\\\y"]], not_match=[["git", "a", "[a]", "x\\\\y"]])`,
        `prefix_rule(pattern=["git", "status"], match=["/opt/bin/git status"])`,
        `network_rule(host="example.com", protocol="https", decision="allow")`,
      ].join("\n"),
    );
    // /opt/bin/git may only fall back to git rules when no host_executable names git's paths
    const plain = await loadPolicyFiles([host, rules]);
    expect(plain.errors.map((e) => [e.file, e.line, e.kind])).toEqual([[rules, 4, "example"]]);
    const cold = await loadPolicyFiles([host, rules], { cacheDir });
    const warm = await loadPolicyFiles([host, rules], { cacheDir });
    expect(cold.cache?.written).toEqual([host, rules]);
    expect(warm.cache?.hits).toEqual([host, rules]);
    for (const r of [cold, warm]) {
      expect(r.errors).toEqual(plain.errors);
      expect(r.files).toEqual(plain.files);
      expect(r.policy.rules()).toEqual(plain.policy.rules());
      expect(r.policy.networkRules).toEqual(plain.policy.networkRules);
      expect([...r.policy.hostExecutables]).toEqual([...plain.policy.hostExecutables]);
      for (const argv of [
        ["git", "*", "[a]", "x\\y"],
        ["git", "a", "a", "x\\y"],
        ["rm", "-rf"],
      ])
        expect(checkArgv(r.policy, argv)).toEqual(checkArgv(plain.policy, argv));
    }
    // examples are checked on every load, against the host executables of the files before
    const alone = await loadPolicyFiles([rules], { cacheDir });
    expect(alone.cache?.hits).toEqual([rules]);
    expect(alone.errors).toEqual([]);
  });

  it("normalised .rules files rebuild the same policy and example results (property)", () => {
    const token = fc.constantFrom("a", "b", "*", "a?", "[x]", "\\", "x\\*", "é", " ", "-r");
    const position = fc.oneof(
      token.map((t) => JSON.stringify(t)),
      fc.array(token, { minLength: 1, maxLength: 3 }).map((ts) => JSON.stringify(ts)),
    );
    const example = fc.array(token, { minLength: 1, maxLength: 3 }).map((ts) => JSON.stringify(ts));
    const call = fc
      .record({
        pattern: fc.array(position, { minLength: 1, maxLength: 3 }),
        decision: fc.constantFrom("allow", "prompt", "forbidden"),
        match: fc.array(example, { maxLength: 2 }),
        notMatch: fc.array(example, { maxLength: 2 }),
      })
      .map(
        (c) =>
          `prefix_rule(pattern=[${c.pattern.join(", ")}], decision="${c.decision}", match=[${c.match.join(", ")}], not_match=[${c.notMatch.join(", ")}])`,
      );
    const file = fc.array(call, { minLength: 1, maxLength: 5 }).map((cs) => cs.join("\n"));
    const argv = fc.array(token, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(file, fc.array(argv, { maxLength: 6 }), (text, argvs) => {
        let parsed: ReturnType<typeof parseRulesFile>;
        try {
          parsed = parseRulesFile(text, "g.rules");
        } catch {
          return; // a file that does not load is never cached
        }
        const copy: unknown = JSON.parse(JSON.stringify(normalizeRulesFile(parsed)));
        expect(isNormalizedNativePolicy(copy)).toBe(true);
        const rebuilt = buildNativePolicy(
          copy as Parameters<typeof buildNativePolicy>[0],
          "g.rules",
        );
        expect(rebuilt.policy.rules()).toEqual(parsed.policy.rules());
        expect(rebuilt.exampleFailures).toEqual(parsed.exampleFailures);
        for (const a of argvs)
          expect(checkArgv(rebuilt.policy, a)).toEqual(checkArgv(parsed.policy, a));
      }),
      { numRuns: 300 },
    );
  });
});

describe("cacheDirFromEnv", () => {
  it("env override, then XDG_CACHE_HOME (absolute only), then ~/.cache", () => {
    expect(cacheDirFromEnv({ BOTTLEKIT_EXECPOLICY_CACHE_DIR: "/c", HOME: "/h" })).toBe("/c");
    expect(cacheDirFromEnv({ BOTTLEKIT_EXECPOLICY_CACHE_DIR: "rel" }, "/w")).toBe("/w/rel");
    expect(cacheDirFromEnv({ BOTTLEKIT_EXECPOLICY_CACHE_DIR: "off", HOME: "/h" })).toBeUndefined();
    expect(cacheDirFromEnv({ BOTTLEKIT_EXECPOLICY_CACHE_DIR: "", HOME: "/h" })).toBeUndefined();
    expect(cacheDirFromEnv({ XDG_CACHE_HOME: "/x", HOME: "/h" })).toBe("/x/bottlekit/execpolicy");
    expect(cacheDirFromEnv({ XDG_CACHE_HOME: "x", HOME: "/h" })).toBe(
      "/h/.cache/bottlekit/execpolicy",
    );
    expect(cacheDirFromEnv({})).toBeUndefined();
  });

  it("the key covers the bytes, not just their length", () => {
    expect(cacheKey("a", "native")).not.toBe(cacheKey("b", "native"));
    expect(cacheKey("a", "native")).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey(Buffer.from("a"), "native")).toBe(cacheKey("a", "native"));
    // the same bytes mean different policies as .rules and as .yaml
    expect(cacheKey("a", "codex")).not.toBe(cacheKey("a", "native"));
  });
});
