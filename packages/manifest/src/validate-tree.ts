import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { didYouMean as didYouMeanText, suggest } from "@bottlekit/diagnostics";
import {
  type Locations,
  projectBottlesWarning,
  resolveDirs,
  scanNames,
  shadowWarning,
} from "./discover.ts";
import type { ManifestIssue } from "./errors.ts";
import { ManifestLoader } from "./load.ts";
import { isValidName } from "./names.ts";
import { BottleResolver, checkAgentFile } from "./resolve.ts";
import type { ManifestKind } from "./validate.ts";

export interface FileReport {
  file: string;
  kind: ManifestKind;
  ok: boolean;
}

export interface TreeValidation {
  files: FileReport[];
  /** Every problem found, errors and warnings, deduplicated, in file order. */
  issues: ManifestIssue[];
  /** True when there is no error (warnings allowed). */
  ok: boolean;
}

/**
 * Validates manifests: with no paths, every bottle and agent of `$BOTTLEKIT_HOME` and the
 * project; otherwise the given files and directories (`.md` files, recursively). Each file is
 * parsed once; bottles resolve `extends` within their own directory, agents resolve their
 * bottle from the `bottles/` next to their `agents/` directory (not for a project's
 * `.bottlekit`) or else from `$BOTTLEKIT_HOME/bottles`. Lists every problem; never throws on bad
 * content. Cost: linear in the total size of the files.
 */
/** Checks the library cannot make itself (it knows no model catalog): injected by the caller. */
export interface ValidateOptions {
  /**
   * Called with each agent's `model`; returns a problem (message and optional hint) when the
   * model is not known, e.g. from `@bottlekit/provider-registry`'s catalog.
   */
  checkModel?: (model: string) => { message: string; hint?: string } | undefined;
}

export function validatePaths(
  paths: readonly string[],
  loc: Locations = {},
  options: ValidateOptions = {},
): TreeValidation {
  const dirs = resolveDirs(loc);
  const loader = new ManifestLoader();
  const resolvers = new Map<string, BottleResolver>();
  const resolverFor = (dir: string) => {
    let r = resolvers.get(dir);
    if (!r) {
      r = new BottleResolver(dir, loader);
      resolvers.set(dir, r);
    }
    return r;
  };
  const issues: ManifestIssue[] = [];
  const targets: { file: string; kind: ManifestKind | undefined }[] = [];
  if (paths.length === 0) {
    if (!existsSync(dirs.home)) {
      // A CI gate that checks nothing must not pass: a missing home is an error, not "0 checked".
      issues.push({
        code: "E_READ",
        severity: "error",
        file: dirs.home,
        line: 1,
        col: 1,
        path: "",
        message: "the bottlekit home does not exist, so there is nothing to validate",
        hint: `create one with \`bottle init --home ${dirs.home}\`, or pass --home / BOTTLEKIT_HOME pointing at an existing home`,
      });
    }
    for (const file of scanNames(dirs.bottles, issues).values())
      targets.push({ file, kind: "bottle" });
    for (const file of scanNames(dirs.agents, issues).values())
      targets.push({ file, kind: "agent" });
    if (dirs.projectAgents !== undefined) {
      const home = scanNames(dirs.agents, []);
      for (const [name, file] of scanNames(dirs.projectAgents, issues)) {
        targets.push({ file, kind: "agent" });
        const shadowed = home.get(name);
        if (shadowed !== undefined) issues.push(shadowWarning(name, file, shadowed));
      }
    }
    const pw = projectBottlesWarning(dirs);
    if (pw) issues.push(pw);
  } else {
    for (const p of paths) collect(resolve(loc.cwd ?? process.cwd(), p), targets, issues);
  }
  const files: FileReport[] = [];
  for (const t of targets) {
    const kind = t.kind ?? sniffKind(loader, t.file);
    const dir = dirname(t.file);
    const name = basename(t.file).replace(/\.md$/, "");
    const before = issues.length;
    if (kind === "bottle") {
      if (!isValidName(name)) {
        issues.push(badName(t.file, name));
      } else {
        const resolver = resolverFor(dir);
        const own = loader.load(t.file, "bottle");
        if (own.value === undefined) issues.push(...own.issues);
        else {
          issues.push(...own.issues);
          issues.push(...missingRuleFiles(loader, t.file, dirs.home));
          const out = resolver.resolveInternal(name);
          if (!out.ok) issues.push(...out.issues);
        }
      }
    } else {
      if (!isValidName(name)) issues.push(badName(t.file, name));
      const resolver = resolverFor(bottlesDirFor(dir, dirs.bottles, dirs.home));
      issues.push(...checkAgentFile(t.file, resolver, loader));
      if (options.checkModel) issues.push(...modelIssues(loader, t.file, options.checkModel));
    }
    const mine = issues.slice(before);
    files.push({ file: t.file, kind, ok: !mine.some((i) => i.severity === "error") });
  }
  const deduped = dedupe(issues);
  return { files, issues: deduped, ok: !deduped.some((i) => i.severity === "error") };
}

/**
 * `exec_policy.rules` entries of one bottle file whose file does not exist (paths are relative to
 * `$BOTTLEKIT_HOME`): a policy that silently loads nothing would allow what it meant to refuse.
 */
function missingRuleFiles(loader: ManifestLoader, file: string, home: string): ManifestIssue[] {
  const parsed = loader.load(file, "bottle").parsed;
  const data = parsed.data as { exec_policy?: { rules?: unknown } } | null | undefined;
  const rules = data?.exec_policy?.rules;
  if (!Array.isArray(rules)) return [];
  const out: ManifestIssue[] = [];
  rules.forEach((rule, i) => {
    if (typeof rule !== "string") return;
    const full = resolve(home, rule.startsWith("~/") ? join(homedir(), rule.slice(2)) : rule);
    if (existsSync(full)) return;
    const pos = parsed.locate(["exec_policy", "rules", i]);
    const dir = dirname(full);
    const near = existsSync(dir)
      ? suggest(
          basename(full),
          readdirSync(dir).filter(
            (e) => e.endsWith(".rules") || e.endsWith(".yaml") || e.endsWith(".yml"),
          ),
        )
      : [];
    const guess = didYouMeanText(near.map((n) => relative(home, join(dir, n))));
    out.push({
      code: "E_READ",
      severity: "error",
      file,
      line: pos.line,
      col: pos.col,
      path: `exec_policy.rules[${i}]`,
      message: `rule file ${rule} does not exist (looked in ${full})${guess ? `; ${guess}` : ""}`,
      hint: "rule paths are relative to $BOTTLEKIT_HOME; create the file or fix the path",
    });
  });
  return out;
}

function modelIssues(
  loader: ManifestLoader,
  file: string,
  check: NonNullable<ValidateOptions["checkModel"]>,
): ManifestIssue[] {
  const parsed = loader.load(file, "agent").parsed;
  const model = (parsed.data as { model?: unknown } | null | undefined)?.model;
  if (typeof model !== "string") return [];
  const problem = check(model);
  if (problem === undefined) return [];
  const pos = parsed.locate(["model"]);
  return [
    {
      code: "E_SCHEMA",
      severity: "error",
      file,
      line: pos.line,
      col: pos.col,
      path: "model",
      message: problem.message,
      ...(problem.hint !== undefined ? { hint: problem.hint } : {}),
    },
  ];
}

function badName(file: string, name: string): ManifestIssue {
  return {
    code: "E_NAME",
    severity: "error",
    file,
    line: 1,
    col: 1,
    path: "",
    message: `\`${name}\` is not a valid manifest name (^[a-z][a-z0-9-]*$)`,
    hint: "rename the file to lower case letters, digits and dashes, starting with a letter",
  };
}

function dedupe(issues: readonly ManifestIssue[]): ManifestIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.file}|${i.line}|${i.col}|${i.code}|${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Agents in `<root>/agents/` use `<root>/bottles/` when it exists, except in a project's `.bottlekit`. */
function bottlesDirFor(agentDir: string, homeBottles: string, home: string): string {
  const root = dirname(agentDir);
  if (basename(agentDir) !== "agents") return homeBottles;
  if (basename(root) === ".bottlekit" && root !== home) return homeBottles;
  const sibling = join(root, "bottles");
  return existsSync(sibling) ? sibling : homeBottles;
}

function sniffKind(loader: ManifestLoader, file: string): ManifestKind {
  const parent = basename(dirname(file));
  if (parent === "bottles") return "bottle";
  if (parent === "agents") return "agent";
  const probe = loader.load(file, "bottle").parsed.data;
  return probe !== null && typeof probe === "object" && "bottle" in probe ? "agent" : "bottle";
}

function collect(
  p: string,
  targets: { file: string; kind: ManifestKind | undefined }[],
  issues: ManifestIssue[],
): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(p);
  } catch {
    issues.push({
      code: "E_READ",
      severity: "error",
      file: p,
      line: 1,
      col: 1,
      path: "",
      message: "no such file or directory",
      hint: "pass manifest files or directories that exist",
    });
    return;
  }
  if (st.isFile()) {
    targets.push({ file: p, kind: undefined });
    return;
  }
  if (!st.isDirectory()) return;
  const entries = readdirSync(p).sort();
  for (const e of entries) {
    if (e === "node_modules" || e === ".git") continue;
    const full = join(p, e);
    let s: ReturnType<typeof statSync>;
    try {
      s = statSync(full);
    } catch {
      continue;
    }
    if (s.isDirectory()) collect(full, targets, issues);
    else if (e.endsWith(".md") && !/^(readme|changelog|license)\.md$/i.test(e)) {
      targets.push({ file: full, kind: undefined });
    }
  }
}
