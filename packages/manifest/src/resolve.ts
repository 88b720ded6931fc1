import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Route } from "@bottlekit/egress-dlp";
import {
  type Locations,
  projectBottlesWarning,
  resolveDirs,
  scanNames,
  shadowWarning,
} from "./discover.ts";
import { displayEnv, type EnvValue } from "./env.ts";
import { errorFromIssues, ManifestError, type ManifestIssue } from "./errors.ts";
import type { KeyPath } from "./frontmatter.ts";
import { pathToString } from "./frontmatter.ts";
import { type LoadedFile, ManifestLoader } from "./load.ts";
import {
  type Acc,
  applyDefault,
  dropRoutes,
  emptyAcc,
  layerToAcc,
  mergeAcc,
  type Provenance,
  routesOf,
} from "./merge.ts";
import { didYouMean, isValidName } from "./names.ts";
import type {
  AgentFrontmatter,
  AgentProvider,
  BudgetEntry,
  CutoffPolicy,
  GitIdentity,
} from "./schema.ts";

/** The effective bottle settings after `extends` (and, for an agent, the agent's overlay). */
export interface EffectiveBottleConfig {
  env: Record<string, EnvValue>;
  agent_provider?: AgentProvider;
  egress: { routes: Route[]; log: boolean };
  budget: Record<string, BudgetEntry>;
  cutoff: CutoffPolicy;
  supervise: boolean;
  exec_policy: { rules: string[] };
  sandbox: { filesystem: { read_only: string[]; read_write: string[]; deny_read: string[] } };
  git_identity: GitIdentity;
}

/** The effective agent: bottle settings plus the agent's own keys. */
export interface EffectiveAgentConfig extends EffectiveBottleConfig {
  bottle: string;
  model?: string;
  skills: string[];
}

/** One bottle of an `extends` graph, as explain shows it. */
export interface BottleNode {
  name: string;
  file: string;
  /** Direct parents, in `extends` order. */
  parents: string[];
  /** Routes the bottle inherits after folding its parents, before its own routes apply. */
  inheritedRoutes: Route[];
  /** The bottle's own routes. */
  ownRoutes: Route[];
  /** False when the bottle sets `egress.inherit_routes: false`. */
  inheritRoutes: boolean;
  /** Route keys dropped by `inherit_routes: false`. */
  droppedRoutes: string[];
}

export interface ResolvedBottle {
  name: string;
  file: string;
  /** The bottle's markdown body. */
  notes: string;
  config: EffectiveBottleConfig;
  /** Provenance for every key of `config`, sorted by path. */
  provenance: Provenance[];
  /** Every bottle of the graph once, parents before children; the bottle itself last. */
  order: string[];
  /** The graph, keyed by bottle name. */
  nodes: Record<string, BottleNode>;
}

export interface ResolvedAgent {
  name: string;
  file: string;
  source: "home" | "project";
  /** The home agent file this project agent shadows. */
  shadows?: string;
  /** The agent's markdown body: its system prompt. */
  prompt: string;
  description?: string;
  config: EffectiveAgentConfig;
  /** Provenance for every key of `config` (which file set it), sorted by path. */
  provenance: Provenance[];
  /** The bottle graph behind the agent. */
  bottle: ResolvedBottle;
  /** Warnings: ignored keys, shadowing, a project that ships bottles. */
  warnings: ManifestIssue[];
}

export interface ResolveOptions extends Locations {
  /** Reuse a loader to share parsed files between calls. */
  loader?: ManifestLoader;
}

/** A resolved bottle as cached: the merged state, its own graph node, and a lazily built view. */
interface Internal {
  acc: Acc;
  node: BottleNode;
  notes: string;
  /** Built on first use: parents' internals are not turned into public views unless asked. */
  view: ResolvedBottle | undefined;
}

type Outcome = { ok: true; value: Internal } | { ok: false; issues: ManifestIssue[] };

/**
 * Resolves bottles of one directory with `extends`, caching each by name, so a diamond is parsed
 * and merged once. Cost: linear in the total size of the files in the graph.
 */
export class BottleResolver {
  readonly #cache = new Map<string, Outcome>();
  readonly #loader: ManifestLoader;
  readonly bottlesDir: string;
  #names: Map<string, string> | undefined;

  constructor(bottlesDir: string, loader: ManifestLoader = new ManifestLoader()) {
    this.bottlesDir = bottlesDir;
    this.#loader = loader;
  }

  /** Bottle names available in the directory. */
  names(): Map<string, string> {
    this.#names ??= scanNames(this.bottlesDir, []);
    return this.#names;
  }

  /** The cached merge state, without building a public view (used by validation). @internal */
  resolveInternal(name: string): Outcome {
    return this.#resolve(name, []);
  }

  /** Resolves a bottle; throws a ManifestError listing every problem. */
  resolve(name: string): ResolvedBottle {
    const out = this.resolveInternal(name);
    if (!out.ok) throw errorFromIssues(out.issues, `cannot resolve bottle \`${name}\`:`);
    return this.view(name, out.value);
  }

  /** @internal The public view of a resolved bottle: config, provenance and the graph (built once). */
  view(name: string, internal: Internal): ResolvedBottle {
    if (internal.view) return internal.view;
    // Graph order: parents before children, each bottle once (depth-first over `extends`).
    const order: string[] = [];
    const nodes: Record<string, BottleNode> = {};
    const visit = (n: string) => {
      if (Object.hasOwn(nodes, n)) return;
      const hit = this.#cache.get(n);
      if (!hit?.ok) return;
      nodes[n] = hit.value.node;
      for (const p of hit.value.node.parents) visit(p);
      order.push(n);
    };
    visit(name);
    internal.view = {
      name,
      file: internal.node.file,
      notes: internal.notes,
      config: toBottleConfig(withDefaults(internal.acc)),
      provenance: sortedProv(internal.acc),
      order,
      nodes,
    };
    return internal.view;
  }

  /** Resolves a bottle, or returns every issue found on the way (never throws on content). */
  tryResolve(
    name: string,
  ): { ok: true; value: ResolvedBottle } | { ok: false; issues: ManifestIssue[] } {
    const out = this.resolveInternal(name);
    return out.ok ? { ok: true, value: this.view(name, out.value) } : out;
  }

  missingIssue(
    wanted: string,
    file: string,
    loc: { line: number; col: number },
    path: KeyPath,
    what: string,
  ): ManifestIssue {
    const available = [...this.names().keys()];
    const near = didYouMean(wanted, available);
    const list =
      available.length > 0
        ? `available bottles: ${available.join(", ")}`
        : `there are no bottles in ${this.bottlesDir}`;
    return {
      code: "E_EXTENDS_MISSING",
      severity: "error",
      file,
      ...loc,
      path: pathToString(path),
      message: `${what} \`${wanted}\`, but there is no ${this.bottlesDir}/${wanted}.md`,
      hint: near ? `did you mean \`${near}\`? ${list}` : list,
    };
  }

  #resolve(name: string, stack: readonly string[]): Outcome {
    const cached = this.#cache.get(name);
    if (cached) return cached;
    const file = this.names().get(name) ?? join(this.bottlesDir, `${name}.md`);
    const loaded = this.#loader.load(file, "bottle");
    if (loaded.value === undefined) {
      const out: Outcome = { ok: false, issues: [...loaded.issues] };
      this.#cache.set(name, out);
      return out;
    }
    const front = loaded.value;
    const parents =
      front.extends === undefined
        ? []
        : typeof front.extends === "string"
          ? [front.extends]
          : front.extends;
    const issues: ManifestIssue[] = [];
    const acc = emptyAcc();
    const chain = [...stack, name];
    parents.forEach((parent, i) => {
      const path: KeyPath = typeof front.extends === "string" ? ["extends"] : ["extends", i];
      const loc = loaded.parsed.locate(path);
      if (parent === name) {
        issues.push({
          code: "E_EXTENDS_CYCLE",
          severity: "error",
          file,
          ...loc,
          path: pathToString(path),
          message: `bottle \`${name}\` extends itself`,
          hint: "remove it from `extends`",
        });
        return;
      }
      if (chain.includes(parent)) {
        const cycle = [...chain.slice(chain.indexOf(parent)), parent].join(" -> ");
        issues.push({
          code: "E_EXTENDS_CYCLE",
          severity: "error",
          file,
          ...loc,
          path: pathToString(path),
          message: `extends cycle: ${cycle}`,
          hint: `remove \`${parent}\` from the \`extends\` of \`${name}\` or of another bottle in the cycle`,
        });
        return;
      }
      if (!this.names().has(parent)) {
        const via = stack.length > 0 ? ` (reached through ${stack.join(" -> ")})` : "";
        issues.push(this.missingIssue(parent, file, loc, path, `bottle \`${name}\`${via} extends`));
        return;
      }
      const out = this.#resolve(parent, chain);
      if (!out.ok) {
        issues.push(...out.issues);
        return;
      }
      mergeAcc(acc, out.value.acc);
    });
    if (issues.length > 0) {
      // Failures are cached too: every bottle of a cycle reports the one edge that closes it.
      const failed: Outcome = { ok: false, issues: dedupeIssues(issues) };
      this.#cache.set(name, failed);
      return failed;
    }
    const inheritedRoutes = [...routesOf(acc).values()];
    const inherit = front.egress?.inherit_routes !== false;
    const droppedRoutes = inherit ? [] : dropRoutes(acc);
    mergeAcc(acc, layerToAcc(front, { kind: "bottle", name, file }, loaded.parsed.locate));
    const node: BottleNode = {
      name,
      file,
      parents: [...parents],
      inheritedRoutes,
      ownRoutes: front.egress?.routes ?? [],
      inheritRoutes: inherit,
      droppedRoutes,
    };
    const out: Outcome = { ok: true, value: { acc, node, notes: loaded.body, view: undefined } };
    this.#cache.set(name, out);
    return out;
  }
}

function dedupeIssues(issues: readonly ManifestIssue[]): ManifestIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.file}|${i.line}|${i.col}|${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const DEFAULTS: readonly [readonly string[], unknown][] = [
  [["cutoff"], "cutoff"],
  [["supervise"], false],
  [["egress", "log"], false],
];

function withDefaults(acc: Acc): Acc {
  const copy = emptyAcc();
  mergeAcc(copy, acc);
  for (const [path, value] of DEFAULTS) applyDefault(copy, path, value);
  return copy;
}

function sortedProv(acc: Acc): Provenance[] {
  return [...acc.prov.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Map)
    ? (v as Record<string, unknown>)
    : {};
}
function strs(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function toBottleConfig(acc: Acc): EffectiveBottleConfig {
  const v = acc.value;
  const egress = rec(v["egress"]);
  const fs = rec(rec(v["sandbox"])["filesystem"]);
  const config: EffectiveBottleConfig = {
    env: { ...(rec(v["env"]) as Record<string, EnvValue>) },
    egress: { routes: [...routesOf(acc).values()], log: egress["log"] === true },
    budget: structuredClone(rec(v["budget"])) as Record<string, BudgetEntry>,
    cutoff: (v["cutoff"] as CutoffPolicy | undefined) ?? "cutoff",
    supervise: v["supervise"] === true,
    exec_policy: { rules: strs(rec(v["exec_policy"])["rules"]) },
    sandbox: {
      filesystem: {
        read_only: strs(fs["read_only"]),
        read_write: strs(fs["read_write"]),
        deny_read: strs(fs["deny_read"]),
      },
    },
    git_identity: { ...(rec(v["git_identity"]) as GitIdentity) },
  };
  if (v["agent_provider"] !== undefined)
    config.agent_provider = v["agent_provider"] as AgentProvider;
  return config;
}

/** Resolves a bottle from `$BOTTLEKIT_HOME/bottles` with its `extends` chain and provenance. */
export function resolveBottle(name: string, options: ResolveOptions = {}): ResolvedBottle {
  const dirs = resolveDirs(options);
  checkName(name, "bottle");
  const resolver = new BottleResolver(dirs.bottles, options.loader);
  if (!resolver.names().has(name)) {
    const available = [...resolver.names().keys()];
    const near = didYouMean(name, available);
    throw new ManifestError("E_NOT_FOUND", `no bottle \`${name}\` in ${dirs.bottles}`, {
      hint: `${near ? `did you mean \`${near}\`? ` : ""}${available.length > 0 ? `available bottles: ${available.join(", ")}` : "create the bottle file first"}`,
    });
  }
  return resolver.resolve(name);
}

function checkName(name: string, kind: string): void {
  if (!isValidName(name)) {
    throw new ManifestError("E_NAME", `\`${name}\` is not a valid ${kind} name`, {
      hint: "names are lower case letters, digits and dashes, starting with a letter (^[a-z][a-z0-9-]*$)",
    });
  }
}

/** Where an agent's file is: the project's wins over home's. */
export function findAgent(
  name: string,
  options: Locations = {},
): { file: string; source: "home" | "project"; shadows?: string } {
  checkName(name, "agent");
  const dirs = resolveDirs(options);
  const homeFile = join(dirs.agents, `${name}.md`);
  const projectFile =
    dirs.projectAgents === undefined ? undefined : join(dirs.projectAgents, `${name}.md`);
  const homeExists = existsSync(homeFile);
  if (projectFile !== undefined && existsSync(projectFile)) {
    return homeExists
      ? { file: projectFile, source: "project", shadows: homeFile }
      : { file: projectFile, source: "project" };
  }
  if (homeExists) return { file: homeFile, source: "home" };
  const available = new Set<string>([...scanNames(dirs.agents, []).keys()]);
  if (dirs.projectAgents !== undefined)
    for (const n of scanNames(dirs.projectAgents, []).keys()) available.add(n);
  const names = [...available].sort();
  const near = didYouMean(name, names);
  const where =
    dirs.projectAgents === undefined ? dirs.agents : `${dirs.agents} or ${dirs.projectAgents}`;
  throw new ManifestError("E_NOT_FOUND", `no agent \`${name}\` in ${where}`, {
    hint: `${near ? `did you mean \`${near}\`? ` : ""}${names.length > 0 ? `available agents: ${names.join(", ")}` : `create ${join(dirs.agents, `${name}.md`)}`}`,
  });
}

/**
 * Checks an agent file without building its effective config: its own frontmatter, that its
 * bottle exists, and that the bottle graph resolves. Returns every issue, warnings included.
 */
export function checkAgentFile(
  file: string,
  resolver: BottleResolver,
  loader: ManifestLoader,
): ManifestIssue[] {
  const loaded = loader.load(file, "agent");
  if (loaded.value === undefined) return [...loaded.issues];
  const bottle = loaded.value.bottle;
  if (!resolver.names().has(bottle)) {
    return [
      ...loaded.issues,
      resolver.missingIssue(
        bottle,
        file,
        loaded.parsed.locate(["bottle"]),
        ["bottle"],
        `agent \`${loaded.name}\` uses bottle`,
      ),
    ];
  }
  const out = resolver.resolveInternal(bottle);
  return out.ok ? [...loaded.issues] : [...loaded.issues, ...out.issues];
}

type AgentOutcome = { ok: true; value: ResolvedAgent } | { ok: false; issues: ManifestIssue[] };

/** Resolves an agent file against a bottles directory; never throws on bad content. */
export function tryResolveAgentFile(
  file: string,
  resolver: BottleResolver,
  loader: ManifestLoader,
): AgentOutcome {
  const loaded: LoadedFile<AgentFrontmatter> = loader.load(file, "agent");
  const warnings = loaded.issues.filter((i) => i.severity === "warning");
  if (loaded.value === undefined) return { ok: false, issues: [...loaded.issues] };
  const front = loaded.value;
  if (!resolver.names().has(front.bottle)) {
    return {
      ok: false,
      issues: [
        ...warnings,
        resolver.missingIssue(
          front.bottle,
          file,
          loaded.parsed.locate(["bottle"]),
          ["bottle"],
          `agent \`${loaded.name}\` uses bottle`,
        ),
      ],
    };
  }
  const out = resolver.resolveInternal(front.bottle);
  if (!out.ok) return { ok: false, issues: [...warnings, ...out.issues] };
  const acc = emptyAcc();
  mergeAcc(acc, out.value.acc);
  const agentLayer = layerToAcc(
    front as Record<string, unknown>,
    { kind: "agent", name: loaded.name, file },
    loaded.parsed.locate,
  );
  mergeAcc(acc, agentLayer);
  const full = withDefaults(acc);
  const bottlePath = pathToString(["bottle"]);
  full.prov.set(bottlePath, {
    path: bottlePath,
    source: { kind: "agent", name: loaded.name, file, ...loaded.parsed.locate(["bottle"], "key") },
    overridden: [],
  });
  const config: EffectiveAgentConfig = {
    bottle: front.bottle,
    ...(front.model === undefined ? {} : { model: front.model }),
    skills: strs(full.value["skills"]),
    ...toBottleConfig(full),
  };
  const resolved: ResolvedAgent = {
    name: loaded.name,
    file,
    source: "home",
    prompt: loaded.body,
    config,
    provenance: sortedProv(full),
    bottle: resolver.view(front.bottle, out.value),
    warnings,
  };
  if (front.description !== undefined) resolved.description = front.description;
  return { ok: true, value: resolved };
}

/**
 * Resolves an agent by name: finds its file (the project's `.bottlekit/agents/` wins over
 * `$BOTTLEKIT_HOME/agents/`, and the result says so), validates it, resolves its bottle with
 * `extends` from `$BOTTLEKIT_HOME/bottles` only, and overlays the agent's keys. Every key of the
 * result has provenance. Throws a ManifestError listing every problem, each with file, line:col
 * and key path.
 */
export function resolveAgent(name: string, options: ResolveOptions = {}): ResolvedAgent {
  const dirs = resolveDirs(options);
  const found = findAgent(name, options);
  const loader = options.loader ?? new ManifestLoader();
  const resolver = new BottleResolver(dirs.bottles, loader);
  const out = tryResolveAgentFile(found.file, resolver, loader);
  if (!out.ok)
    throw errorFromIssues(out.issues, `cannot resolve agent \`${name}\` (${found.file}):`);
  const agent = out.value;
  agent.source = found.source;
  if (found.shadows !== undefined) {
    agent.shadows = found.shadows;
    agent.warnings.push(shadowWarning(name, found.file, found.shadows));
  }
  const pw = projectBottlesWarning(dirs);
  if (pw) agent.warnings.push(pw);
  return agent;
}

/** A JSON-safe view of an effective config: env values from the host or asked at launch are shown as `<from $NAME>` / `<asked at launch>`. */
export function redactConfig<T extends EffectiveBottleConfig>(
  config: T,
): Omit<T, "env"> & { env: Record<string, string> } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.env)) env[k] = displayEnv(v);
  return { ...config, env };
}
