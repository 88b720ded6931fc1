/**
 * Loading several policy files with per-file isolation: a broken file is reported with its
 * location and skipped, and every other file still applies.
 */

import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { amendmentRefusal } from "./amend.ts";
import { parseRulesFile } from "./codex-rules.ts";
import { stricter } from "./decision.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { EXEC_CAPABLE_OPTIONS } from "./exec-options.ts";
import { loaded } from "./loaded.ts";
import {
  buildNativePolicy,
  type NormalizedNativePolicy,
  normalizeRulesFile,
} from "./native-build.ts";
import { Policy, type PrefixRule } from "./policy.ts";
import { cacheKey, readCachedPolicy, writeCachedPolicy } from "./policy-cache.ts";

export interface PolicySource {
  /** Path shown in diagnostics and rule locations. */
  path: string;
  text: string;
  /** Defaults to the extension: `.yaml`/`.yml` are native, everything else Codex `.rules`. */
  format?: "codex" | "native";
}

export interface LoadedFile {
  path: string;
  format: "codex" | "native";
  ok: boolean;
  /** Number of prefix rules the file contributed (0 when it failed). */
  rules: number;
}

export interface LoadResult {
  /** The merged policy of every file that loaded. */
  policy: Policy;
  /** One entry per file that failed; empty when everything loaded. */
  errors: Diagnostic[];
  /** Rules that load but are probably a mistake (e.g. allowing `bash -lc` or `sudo` outright). */
  warnings: Diagnostic[];
  files: LoadedFile[];
  /** With a cache directory: which files were served from it and which were (re)written. */
  cache?: { dir: string; hits: string[]; written: string[] };
}

export interface LoadOptions {
  /**
   * Directory of the compiled-policy cache, keyed by file content: a hit skips YAML parsing and
   * schema validation, or the Starlark evaluation of a `.rules` file (examples are still checked). Off by default in the library; the CLI uses
   * `$XDG_CACHE_HOME/bottlekit/execpolicy` (see `cacheDirFromEnv`).
   */
  cacheDir?: string | undefined;
}

function isDiagnostic(value: unknown): value is Diagnostic {
  return (
    typeof value === "object" &&
    value !== null &&
    "file" in value &&
    "line" in value &&
    "message" in value
  );
}

export function formatOf(path: string): "codex" | "native" {
  return /\.ya?ml$/i.test(path) ? "native" : "codex";
}

type NativeNormalizer = (text: string, file: string) => NormalizedNativePolicy;

/**
 * Loads policy sources in order. Never throws for a bad file: it is reported in `errors`.
 * The native (YAML + zod) normaliser is passed in so CLI runs without YAML files, or whose YAML
 * files are all in the cache (`cached`), never load zod. Freshly normalised files go to `fresh`.
 */
export function loadSourcesWith(
  sources: readonly PolicySource[],
  normalizeNative: NativeNormalizer | undefined,
  cached?: ReadonlyMap<PolicySource, NormalizedNativePolicy>,
  fresh?: Map<PolicySource, NormalizedNativePolicy>,
): LoadResult {
  const policy = new Policy();
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const files: LoadedFile[] = [];
  let defaultSet = false;
  for (const src of sources) {
    const format = src.format ?? formatOf(src.path);
    try {
      let parsed: ReturnType<typeof parseRulesFile> | ReturnType<typeof buildNativePolicy>;
      const hit = cached?.get(src);
      if (hit !== undefined) parsed = buildNativePolicy(hit, src.path, policy.hostExecutables);
      else if (format === "native") {
        if (!normalizeNative) throw new Error("the native format parser is not available");
        const normalized = normalizeNative(src.text, src.path);
        fresh?.set(src, normalized);
        parsed = buildNativePolicy(normalized, src.path, policy.hostExecutables);
      } else {
        const rules = parseRulesFile(src.text, src.path, policy.hostExecutables);
        if (fresh) fresh.set(src, normalizeRulesFile(rules));
        parsed = rules;
      }
      if (parsed.exampleFailures.length > 0) {
        errors.push(...parsed.exampleFailures);
        warnings.push(droppedRules(src.path, parsed.policy));
        files.push({ path: src.path, format, ok: false, rules: 0 });
        continue;
      }
      policy.merge(parsed.policy);
      warnings.push(...broadAllowWarnings(parsed.policy));
      const declaredDefault = "defaultDecision" in parsed ? parsed.defaultDecision : undefined;
      if (declaredDefault !== undefined) {
        // several files may set a default: the strictest one applies
        policy.defaultDecision = defaultSet
          ? stricter(policy.defaultDecision, declaredDefault)
          : declaredDefault;
        defaultSet = true;
      }
      files.push({ path: src.path, format, ok: true, rules: parsed.policy.size });
    } catch (err) {
      if (isDiagnostic(err)) errors.push(err);
      else {
        // An internal failure still only discards this one file.
        errors.push({
          file: src.path,
          line: 1,
          column: 1,
          message: `could not load policy: ${err instanceof Error ? err.message : String(err)}`,
        });
      }
      files.push({ path: src.path, format, ok: false, rules: 0 });
    }
  }
  return { policy, errors, warnings, files };
}

/** Allow rules whose literal prefix would be refused as an amendment: they let arbitrary code run. */
function broadAllowWarnings(policy: Policy): Diagnostic[] {
  const out: Diagnostic[] = [];
  // one exec-capable warning per program per rule statement (a statement may expand to many rules)
  const execWarned = new Set<string>();
  for (const rule of policy.rules()) {
    if (rule.decision !== "allow" || rule.exceptions) continue;
    const literal: string[] = [rule.program];
    for (const pos of rule.rest) {
      if (pos.length !== 1 || !pos[0] || !("literal" in pos[0])) break;
      literal.push(pos[0].literal);
    }
    if (literal.length !== rule.rest.length + 1) continue;
    const exec = execCapableWarning(rule);
    const key = `${rule.source.file}:${rule.source.line}:${rule.program}`;
    if (exec && !execWarned.has(key)) {
      execWarned.add(key);
      out.push(exec);
    }
    const why = amendmentRefusal(literal);
    if (why && !why.includes("empty") && !why.includes("newline")) {
      out.push({
        file: rule.source.file,
        line: rule.source.line,
        column: rule.source.column,
        message: `warning: allowing ${JSON.stringify(literal.join(" "))}: ${why}`,
      });
    }
  }
  return out;
}

/** Says which rules a file's failing example made the loader drop (the whole file is not loaded). */
function droppedRules(path: string, dropped: Policy): Diagnostic {
  const rules = dropped.rules();
  const shown = rules
    .slice(0, 10)
    .map(
      (r) =>
        `${r.decision} [${[r.program, ...r.rest.map((p) => p.map((a) => ("literal" in a ? a.literal : a.glob)).join("|"))].join(" ")}] (line ${r.source.line})`,
    );
  const more = rules.length > shown.length ? `, and ${rules.length - shown.length} more` : "";
  return {
    file: path,
    line: 1,
    column: 1,
    message: `warning: an example failed, so none of this file's ${rules.length} rule(s) apply: dropped ${shown.join(", ")}${more}; fix the example or the rule it exercises`,
  };
}

/**
 * An allow rule for a program with exec-capable options (see exec-options.ts) that does not name
 * them: the options stay at `prompt`, and the author is told so once at load time.
 */
function execCapableWarning(rule: PrefixRule): Diagnostic | undefined {
  const entry = Object.hasOwn(EXEC_CAPABLE_OPTIONS, rule.program)
    ? EXEC_CAPABLE_OPTIONS[rule.program]
    : undefined;
  if (!entry) return undefined;
  const named = new Set(
    rule.rest.flatMap((pos) => pos.flatMap((a) => ("literal" in a ? [a.literal] : []))),
  );
  const open = [...entry.options, ...(entry.words ?? [])].filter((o) => !named.has(o));
  if (open.length === 0) return undefined;
  const listed =
    open.length > 6 ? `${open.slice(0, 6).join(", ")}, … ${open.length} in all` : open.join(", ");
  return {
    file: rule.source.file,
    line: rule.source.line,
    column: rule.source.column,
    message: `warning: this allow rule for ${rule.program} leaves its exec-capable options at prompt unless a rule names them (${listed}): ${entry.why}`,
  };
}

/** The YAML format's parser and validator (yaml, zod), imported on first need. */
async function importNativeFormat(): Promise<NativeNormalizer> {
  const { normalizeNativePolicy } = await import("./native-format.ts");
  loaded.nativeFormat = true;
  return normalizeNativePolicy;
}

/**
 * Reads and loads policy files (Codex `.rules` or native `.yaml`). Unreadable files are load
 * errors. With `options.cacheDir`, native files are looked up in the compiled-policy cache first.
 */
export async function loadPolicyFiles(
  paths: readonly string[],
  options: LoadOptions = {},
): Promise<LoadResult> {
  const sources: PolicySource[] = [];
  const readErrors: Diagnostic[] = [];
  const order: (PolicySource | Diagnostic)[] = [];
  const expanded: string[] = [];
  for (const path of paths) {
    // a directory stands for its policy files, sorted by name (Codex's rules/ layout)
    const isDir = await stat(path).then(
      (st) => st.isDirectory(),
      () => false,
    );
    if (!isDir) {
      expanded.push(path);
      continue;
    }
    const entries = await readdir(path, { withFileTypes: true });
    for (const e of entries
      .filter((x) => x.isFile() && /\.(rules|ya?ml)$/i.test(x.name))
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      expanded.push(join(path, e.name));
    }
  }
  const keys = new Map<PolicySource, string>();
  for (const path of expanded) {
    try {
      const bytes = await readFile(path);
      const s = { path, text: bytes.toString("utf8") };
      if (options.cacheDir !== undefined) keys.set(s, cacheKey(bytes, formatOf(path)));
      sources.push(s);
      order.push(s);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "EIO";
      const d: Diagnostic = {
        file: path,
        line: 1,
        column: 1,
        message: `cannot read policy file (${code})`,
        hint: code === "ENOENT" ? "check the path passed with -r/--rules" : undefined,
      };
      readErrors.push(d);
      order.push(d);
    }
  }
  const cacheDir = options.cacheDir;
  const cached = new Map<PolicySource, NormalizedNativePolicy>();
  if (cacheDir !== undefined) {
    for (const [s, key] of keys) {
      const hit = await readCachedPolicy(cacheDir, key);
      if (hit !== undefined) cached.set(s, hit);
    }
  }
  const native = sources.some((s) => formatOf(s.path) === "native" && !cached.has(s))
    ? await importNativeFormat()
    : undefined;
  const fresh =
    cacheDir === undefined ? undefined : new Map<PolicySource, NormalizedNativePolicy>();
  const result = loadSourcesWith(sources, native, cached, fresh);
  if (cacheDir !== undefined) {
    const written: string[] = [];
    for (const [s, value] of fresh ?? []) {
      const key = keys.get(s);
      if (key !== undefined && (await writeCachedPolicy(cacheDir, key, value)))
        written.push(s.path);
    }
    result.cache = { dir: cacheDir, hits: [...cached.keys()].map((s) => s.path), written };
  }
  if (readErrors.length === 0) return result;
  const files = order.map((o) =>
    "text" in o
      ? (result.files.find((f) => f.path === o.path) as LoadedFile)
      : { path: o.file, format: formatOf(o.file), ok: false, rules: 0 },
  );
  return {
    ...result,
    errors: [...readErrors, ...result.errors],
    files,
  };
}

/** Codex layout: every regular `*.rules` file of a directory, sorted by path. A missing directory loads nothing. */
export async function loadRulesDirectory(
  dir: string,
  options: LoadOptions = {},
): Promise<LoadResult> {
  let names: string[] = [];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => e.isFile() && e.name.endsWith(".rules"))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return loadPolicyFiles(
    names.map((n) => join(dir, n)),
    options,
  );
}
