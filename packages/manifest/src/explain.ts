import type { Route } from "@bottlekit/egress-dlp";
import { displayEnv, type EnvValue } from "./env.ts";
import type { ManifestIssue } from "./errors.ts";
import { pathToString } from "./frontmatter.ts";
import { elementPath, type Provenance, type SourceRef } from "./merge.ts";
import {
  type EffectiveAgentConfig,
  type ResolvedAgent,
  type ResolvedBottle,
  type ResolveOptions,
  resolveAgent,
} from "./resolve.ts";
import { routeKeyOf } from "./validate.ts";

/** How a bottle widens (or resets) what its parents allow on the network. */
export interface EgressChange {
  /** The bottle whose own routes make the change. */
  bottle: string;
  file: string;
  kind:
    | "new-host"
    | "broader-methods"
    | "broader-paths"
    | "fewer-header-conditions"
    | "credentials-attached"
    | "credentials-changed"
    | "dlp-weakened"
    | "routes-dropped";
  /** Route key (host, or host:port). */
  host: string;
  detail: string;
}

export interface ExplainedKey {
  path: string;
  /** The value as shown: secrets from the host or asked at launch are never shown. */
  value: string;
  source: SourceRef;
  overridden: readonly SourceRef[];
}

export interface Explanation {
  agent: { name: string; file: string; source: "home" | "project"; shadows?: string };
  bottle: string;
  /** Every bottle of the graph once, parents first. */
  order: string[];
  /** The extends graph as indented lines. */
  tree: string[];
  keys: ExplainedKey[];
  egress: EgressChange[];
  warnings: ManifestIssue[];
}

const ALL = "*";

function methodSet(route: Route): Set<string> {
  const out = new Set<string>();
  const entries = route.matches ?? [];
  if (entries.length === 0) return new Set([ALL]);
  for (const e of entries) {
    if (!e.methods || e.methods.length === 0) return new Set([ALL]);
    for (const m of e.methods) out.add(m.toUpperCase());
  }
  return out;
}

interface PathRule {
  type: "prefix" | "exact" | "regex";
  value: string;
}

function pathRules(route: Route): PathRule[] | typeof ALL {
  const entries = route.matches ?? [];
  if (entries.length === 0) return ALL;
  const out: PathRule[] = [];
  for (const e of entries) {
    if (!e.paths || e.paths.length === 0) return ALL;
    for (const p of e.paths) out.push({ type: p.type, value: p.value });
  }
  return out;
}

function prefixCovers(prefix: string, path: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (p === "/") return true;
  return path === p || path.startsWith(`${p}/`);
}

/** True when `parent` already allows everything `rule` allows (conservative: unsure = not covered). */
function covered(rule: PathRule, parent: readonly PathRule[]): boolean {
  return parent.some((p) => {
    if (p.type === rule.type && p.value === rule.value) return true;
    if (p.type === "prefix" && rule.type !== "regex") return prefixCovers(p.value, rule.value);
    return false;
  });
}

function hasHeaderConditions(route: Route): boolean {
  const entries = route.matches ?? [];
  return entries.length > 0 && entries.every((e) => (e.headers ?? []).length > 0);
}

function describeRule(r: PathRule): string {
  return r.type === "prefix" ? `${r.value}*` : r.type === "regex" ? `~${r.value}` : r.value;
}

/** One-line summary of a route: methods, paths, credential and DLP action. */
export function summarizeRoute(route: Route): string {
  const methods = methodSet(route);
  const paths = pathRules(route);
  const parts = [
    methods.has(ALL) ? "all methods" : [...methods].join(","),
    paths === ALL ? "all paths" : paths.map(describeRule).join(","),
  ];
  if (route.auth) parts.push(`credential $${route.auth.token_ref} (${route.auth.scheme})`);
  if (route.dlp) parts.push(`dlp ${route.dlp.outbound_on_match}`);
  return parts.join("; ");
}

function dlpWeakened(parent: Route, child: Route): string | undefined {
  const reasons: string[] = [];
  const pOut = parent.dlp?.outbound_detectors;
  const cOut = child.dlp?.outbound_detectors;
  if (cOut === false && pOut !== false) reasons.push("outbound detectors turned off");
  const pIn = parent.dlp?.inbound_detectors;
  const cIn = child.dlp?.inbound_detectors;
  if (cIn === false && pIn !== false) reasons.push("inbound detectors turned off");
  const rank = { block: 2, supervise: 1, redact: 0 } as const;
  const pOn = parent.dlp?.outbound_on_match ?? "supervise";
  const cOn = child.dlp?.outbound_on_match ?? "supervise";
  if (rank[cOn] < rank[pOn]) reasons.push(`on match ${pOn} -> ${cOn}`);
  return reasons.length > 0 ? reasons.join(", ") : undefined;
}

/**
 * Compares a bottle's own routes with the routes it inherits and lists every way it widens them:
 * new hosts, broader methods or paths, fewer header conditions, credentials attached or changed,
 * weaker DLP, and routes dropped by `inherit_routes: false`.
 */
export function egressChanges(bottle: ResolvedBottle): EgressChange[] {
  const out: EgressChange[] = [];
  for (const name of bottle.order) {
    const node = bottle.nodes[name];
    if (!node) continue;
    const push = (kind: EgressChange["kind"], host: string, detail: string) =>
      out.push({ bottle: name, file: node.file, kind, host, detail });
    if (node.droppedRoutes.length > 0) {
      push(
        "routes-dropped",
        "*",
        `starts from no inherited routes, dropping ${node.droppedRoutes.join(", ")}`,
      );
    }
    const inherited = new Map<string, Route>();
    if (node.inheritRoutes) {
      for (const r of node.inheritedRoutes) inherited.set(routeKeyOf(r.host, r.port), r);
    }
    for (const route of node.ownRoutes) {
      const key = routeKeyOf(route.host, route.port);
      const parent = inherited.get(key);
      if (!parent) {
        const wildcard = route.host.startsWith("*.")
          ? `every subdomain of ${route.host.slice(2)}; `
          : "";
        push("new-host", key, `${wildcard}${summarizeRoute(route)}`);
        continue;
      }
      const pm = methodSet(parent);
      const cm = methodSet(route);
      if (!pm.has(ALL)) {
        if (cm.has(ALL)) push("broader-methods", key, `all methods (was ${[...pm].join(",")})`);
        else {
          const added = [...cm].filter((m) => !pm.has(m));
          if (added.length > 0) push("broader-methods", key, `adds ${added.join(",")}`);
        }
      }
      const pp = pathRules(parent);
      const cp = pathRules(route);
      if (pp !== ALL) {
        if (cp === ALL)
          push("broader-paths", key, `all paths (was ${pp.map(describeRule).join(",")})`);
        else {
          const added = cp.filter((r) => !covered(r, pp));
          if (added.length > 0)
            push("broader-paths", key, `adds ${added.map(describeRule).join(",")}`);
        }
      }
      if (hasHeaderConditions(parent) && !hasHeaderConditions(route)) {
        push("fewer-header-conditions", key, "the parent required a header; the child does not");
      }
      if (route.auth && !parent.auth) {
        push(
          "credentials-attached",
          key,
          `attaches $${route.auth.token_ref} (${route.auth.scheme})`,
        );
      } else if (route.auth && parent.auth && route.auth.token_ref !== parent.auth.token_ref) {
        push("credentials-changed", key, `$${parent.auth.token_ref} -> $${route.auth.token_ref}`);
      }
      const weak = dlpWeakened(parent, route);
      if (weak) push("dlp-weakened", key, weak);
    }
  }
  return out;
}

function treeLines(bottle: ResolvedBottle): string[] {
  const lines: string[] = [];
  const shown = new Set<string>();
  const visit = (name: string, prefix: string, last: boolean, depth: number) => {
    const node = bottle.nodes[name];
    const branch = depth === 0 ? "" : last ? "└─ " : "├─ ";
    const again = shown.has(name);
    lines.push(
      `${prefix}${branch}${name}${node ? `  ${node.file}` : ""}${again ? "  (shown above)" : ""}`,
    );
    if (again || !node) return;
    shown.add(name);
    const childPrefix = depth === 0 ? "" : `${prefix}${last ? "   " : "│  "}`;
    node.parents.forEach((p, i) => {
      visit(p, childPrefix, i === node.parents.length - 1, depth + 1);
    });
  };
  visit(bottle.name, "", true, 0);
  return lines;
}

/** Display values of the effective config, keyed like provenance paths. */
function flatten(config: EffectiveAgentConfig): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (v: unknown, path: (string | number)[]) => {
    const p = pathToString(path);
    if (path.length === 2 && path[0] === "env") {
      out.set(p, displayEnv(v as EnvValue));
    } else if (path.length === 2 && path[0] === "egress" && path[1] === "routes") {
      for (const r of v as Route[])
        out.set(pathToString([...path, routeKeyOf(r.host, r.port)]), summarizeRoute(r));
    } else if (path.length === 1 && path[0] === "agent_provider") {
      const ap = v as EffectiveAgentConfig["agent_provider"];
      if (ap) {
        const who = ap.name ?? (ap.command ?? []).join(" ");
        const cred =
          ap.credentials && ap.credentials.length > 0
            ? ` credentials ${ap.credentials.map((c) => `$${c}`).join(",")}`
            : "";
        out.set(p, `${who}${cred}`);
      }
    } else if (Array.isArray(v)) {
      for (const el of v) out.set(elementPath(path, String(el)), String(el));
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    } else if (v !== undefined) out.set(p, String(v));
  };
  walk(config, []);
  return out;
}

/** Builds the explanation of a resolved agent: chain, provenance of every key, egress widening. */
export function explainResolved(agent: ResolvedAgent): Explanation {
  const values = flatten(agent.config);
  const keys: ExplainedKey[] = agent.provenance.map((p: Provenance) => ({
    path: p.path,
    value: values.get(p.path) ?? "",
    source: p.source,
    overridden: p.overridden,
  }));
  const a: Explanation["agent"] = { name: agent.name, file: agent.file, source: agent.source };
  if (agent.shadows !== undefined) a.shadows = agent.shadows;
  return {
    agent: a,
    bottle: agent.bottle.name,
    order: agent.bottle.order,
    tree: treeLines(agent.bottle),
    keys,
    egress: egressChanges(agent.bottle),
    warnings: agent.warnings,
  };
}

/** Resolves an agent and explains it. Throws like `resolveAgent`. */
export function explainAgent(name: string, options: ResolveOptions = {}): Explanation {
  return explainResolved(resolveAgent(name, options));
}

function where(s: SourceRef): string {
  return s.kind === "default" ? "default" : `${s.file}:${s.line}:${s.col}`;
}

/** Renders an explanation as plain text (no colour; the CLI adds styling). */
export function renderExplanation(ex: Explanation): string {
  const out: string[] = [];
  out.push(`agent ${ex.agent.name} (${ex.agent.source}) ${ex.agent.file}`);
  if (ex.agent.shadows) out.push(`  shadows the home agent ${ex.agent.shadows}`);
  out.push("", `bottle ${ex.bottle} extends chain:`);
  for (const l of ex.tree) out.push(`  ${l}`);
  out.push(`  merge order: ${ex.order.join(" -> ")} -> agent ${ex.agent.name}`);
  out.push("", "effective config (key = value  <- set by):");
  for (const k of ex.keys) {
    const over =
      k.overridden.length > 0 ? `  (overrides ${k.overridden.map(where).join(", ")})` : "";
    out.push(`  ${k.path} = ${k.value}  <- ${where(k.source)}${over}`);
  }
  out.push("", "egress widening:");
  if (ex.egress.length === 0) out.push("  none: no routes");
  for (const c of ex.egress) out.push(`  ${c.bottle}: ${c.kind} ${c.host}: ${c.detail}`);
  if (ex.warnings.length > 0) {
    out.push("", "warnings:");
    for (const w of ex.warnings) out.push(`  ${w.file}:${w.line}:${w.col}: ${w.message}`);
  }
  return `${out.join("\n")}\n`;
}
