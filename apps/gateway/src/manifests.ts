import type { BudgetInput, BudgetWindow, CutoffPolicy } from "@bottlekit/budget-store";
import type { Route } from "@bottlekit/egress-dlp";
import { BottleResolver, listManifests, ManifestLoader, resolveDirs } from "@bottlekit/manifest";

/**
 * What the gateway takes from the bottle and agent manifests of `$BOTTLEKIT_HOME`: each
 * manifest's own budgets (source `manifest`, scope bottle or agent), and each bottle's `extends`
 * graph as its budget parents (nearest first), so a parent bottle's budget governs the usage of
 * every bottle that extends it.
 */
export interface ManifestPolicies {
  budgets: BudgetInput[];
  /** Bottle → its parent bottles, nearest first. Bottles without a manifest are absent. */
  parents: ReadonlyMap<string, readonly string[]>;
  /** Manifests that could not be read or validated (file: message); their budgets are skipped. */
  problems: string[];
  /** Windows that had to be rounded up to whole days (the ledger counts days). */
  notes: string[];
  /**
   * Bottle → its effective egress routes (own and inherited through `extends`) that carry `dlp`
   * settings; the gateway applies them, on top of its own config, to that bottle's calls.
   */
  dlpRoutes: ReadonlyMap<string, readonly Route[]>;
}

/**
 * A manifest window (`30m`, `24h`, `7d`, `4w`) as a ledger window. The ledger's windows are whole
 * days, so shorter or odd windows are rounded *up* to the next whole day: a longer window only
 * ever refuses earlier, never later (fail closed).
 */
export function ledgerWindow(window: string | undefined): {
  window: BudgetWindow;
  rounded: boolean;
} {
  if (window === undefined) return { window: "none", rounded: false };
  const m = /^([1-9][0-9]*)([mhdw])$/.exec(window);
  if (!m) return { window: "none", rounded: false };
  const n = Number(m[1]);
  const minutes = m[2] === "m" ? n : m[2] === "h" ? n * 60 : m[2] === "d" ? n * 1440 : n * 10080;
  const days = Math.max(1, Math.ceil(minutes / 1440));
  return { window: `${days}d`, rounded: minutes % 1440 !== 0 };
}

/** Reads every bottle and agent manifest of the home once (linear in the files). */
export function loadManifestPolicies(home: string, env: NodeJS.ProcessEnv): ManifestPolicies {
  const listing = listManifests({ home, cwd: home, env });
  const loader = new ManifestLoader();
  const resolver = new BottleResolver(resolveDirs({ home, cwd: home, env }).bottles, loader);
  const dlpRoutes = new Map<string, readonly Route[]>();
  const budgets: BudgetInput[] = [];
  const problems: string[] = [];
  const notes: string[] = [];
  const directParents = new Map<string, string[]>();
  const policyOf = new Map<string, CutoffPolicy | undefined>();

  const add = (
    scope: "bottle" | "agent",
    key: string,
    file: string,
    budget:
      | Record<string, { tokens: number; usd?: number | undefined; window?: string | undefined }>
      | undefined,
    policy: CutoffPolicy | undefined,
  ) => {
    for (const [provider, entry] of Object.entries(budget ?? {})) {
      const w = ledgerWindow(entry.window);
      if (w.rounded)
        notes.push(`${file}: budget.${provider}.window ${entry.window} counts as ${w.window}`);
      budgets.push({
        scope,
        key,
        provider,
        tokens: entry.tokens,
        ...(entry.usd !== undefined ? { usd: entry.usd } : {}),
        window: w.window,
        ...(policy !== undefined ? { policy } : {}),
        source: "manifest",
      });
    }
  };

  for (const ref of listing.bottles) {
    const loaded = loader.load(ref.file, "bottle");
    if (loaded.value === undefined) {
      problems.push(`${ref.file}: ${loaded.issues[0]?.message ?? "invalid manifest"}`);
      continue;
    }
    const ext = loaded.value.extends;
    directParents.set(ref.name, ext === undefined ? [] : Array.isArray(ext) ? [...ext] : [ext]);
    policyOf.set(ref.name, loaded.value.cutoff);
    add("bottle", ref.name, ref.file, loaded.value.budget, loaded.value.cutoff);
    try {
      const routes = resolver.resolve(ref.name).config.egress.routes.filter((r) => r.dlp);
      if (routes.length > 0) dlpRoutes.set(ref.name, routes);
    } catch (error) {
      problems.push(`${ref.file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const ref of listing.agents) {
    if (ref.source !== "home") continue; // project agents are not the gateway's to trust
    const loaded = loader.load(ref.file, "agent");
    if (loaded.value === undefined) {
      problems.push(`${ref.file}: ${loaded.issues[0]?.message ?? "invalid manifest"}`);
      continue;
    }
    add("agent", ref.name, ref.file, loaded.value.budget, policyOf.get(loaded.value.bottle));
  }

  // Parents nearest first: breadth-first over `extends`, each bottle once, cycles cut.
  const parents = new Map<string, readonly string[]>();
  for (const name of directParents.keys()) {
    const out: string[] = [];
    const seen = new Set([name]);
    let frontier = directParents.get(name) ?? [];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const p of frontier) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push(p);
        next.push(...(directParents.get(p) ?? []));
      }
      frontier = next;
    }
    parents.set(name, out);
  }
  return { budgets, parents, problems, notes, dlpRoutes };
}
