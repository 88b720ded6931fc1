import { formatSchemaIssue, type SchemaIssueLike } from "@bottlekit/diagnostics";
import type { Route, RouteInput } from "@bottlekit/egress-dlp";
import type { CredentialSpec } from "@bottlekit/egress-proxy";
import { bottleSchema, egressChanges, type ResolvedBottle } from "@bottlekit/manifest";
import type { ProviderEntry } from "./config.ts";
import { ApprovalsError } from "./errors.ts";
import type { Change, Widening } from "./types.ts";

/**
 * Changes: validated by the manifest schema (the same one `bottle validate` uses), compared with
 * the routes in force by `bottle explain`'s widening logic, and folded onto a session's base
 * routes and credentials. Linear in the number of routes and grants.
 */

/** Exact host or `*.example.com` pattern match. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  return (
    pattern.startsWith("*.") && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  );
}

function schemaError(issues: readonly SchemaIssueLike[], input: unknown, where: string) {
  return new ApprovalsError(
    "E_INVALID_INPUT",
    issues.map((i) => `${where}: ${formatSchemaIssue(i, input)}`).join("; "),
    { hint: "fix the proposal (the bottle manifest schema applies) and propose again" },
  );
}

/** Validates a route as a bottle manifest would hold it (`egress.routes[0]`); returns it parsed. */
export function validateRoute(route: unknown): Route {
  const input = { egress: { routes: [route] } };
  const r = bottleSchema.safeParse(input);
  if (!r.success) throw schemaError(r.error.issues, input, "proposal");
  return r.data.egress?.routes?.[0] as Route;
}

/** Validates a token budget for a provider as `budget.<provider>.tokens`. */
export function validateBudget(provider: unknown, tokens: unknown): void {
  const input = { budget: { [String(provider)]: { tokens } } };
  const r = bottleSchema.safeParse(input);
  if (!r.success) throw schemaError(r.error.issues, input, "proposal");
}

export function routeKey(r: { host: string; port?: number | undefined }): string {
  return r.port === undefined ? r.host : `${r.host}:${r.port}`;
}

/** Routes widened by `own` over `current`, with `bottle explain`'s report. */
function routeWidening(current: readonly Route[], own: readonly Route[]): Widening[] {
  // one synthetic graph node: what is in force is "inherited", the proposal is the node's own
  const node = {
    name: "proposal",
    file: "",
    parents: [],
    inheritedRoutes: [...current],
    ownRoutes: [...own],
    inheritRoutes: true,
    droppedRoutes: [],
  };
  const view = { order: ["proposal"], nodes: { proposal: node } } as unknown as ResolvedBottle;
  return egressChanges(view).map((c) => ({ kind: c.kind, host: c.host, detail: c.detail }));
}

/** How a change widens the session whose routes in force are `current`. Empty = widens nothing. */
export function wideningOf(change: Change, current: readonly Route[]): Widening[] {
  switch (change.kind) {
    case "route":
      return change.op === "remove" ? [] : routeWidening(current, [validateRoute(change.route)]);
    case "provider": {
      const out: Widening[] = [];
      if (!current.some((r) => hostMatches(r.host, change.host)))
        out.push(...routeWidening(current, [validateRoute({ host: change.host })]));
      out.push({
        kind: "credentials-attached",
        host: change.host,
        detail: `attaches $${change.provider}, bound to ${change.host} only`,
      });
      return out;
    }
    case "budget":
      return [
        {
          kind: "budget-raised",
          host: change.provider,
          detail: `token budget to ${change.tokens}`,
        },
      ];
    case "dlp_hold":
      return [
        {
          kind: "dlp-hold-released",
          host: change.host,
          detail: `sends one ${change.method} ${change.path} that DLP flagged (${[...new Set(change.findings.map((f) => f.rule))].join(", ")})`,
        },
      ];
  }
}

export interface SessionState {
  routes: RouteInput[];
  credentials: CredentialSpec[];
}

/** Folds approved changes (in approval order) onto a session's base routes and credentials. */
export function applyGrants(
  base: SessionState,
  grants: readonly Change[],
  catalogue: readonly ProviderEntry[],
): SessionState {
  let routes = [...base.routes];
  const credentials = base.credentials.map((c) => ({ ...c, hosts: [...(c.hosts ?? [])] }));
  for (const g of grants) {
    if (g.kind === "route") {
      const key = routeKey(g.route);
      routes = routes.filter((r) => routeKey(r) !== key);
      if (g.op !== "remove") routes.push(g.route);
    } else if (g.kind === "provider") {
      const entry = catalogue.find((p) => p.name === g.provider);
      if (!entry) continue; // the catalogue changed since: fail closed, attach nothing
      const have = credentials.find((c) => c.name === g.provider);
      if (have) {
        if (!have.hosts.includes(g.host)) have.hosts.push(g.host);
      } else credentials.push({ name: entry.name, hostEnv: entry.hostEnv, hosts: [g.host] });
      if (!routes.some((r) => hostMatches(r.host, g.host))) routes.push({ host: g.host });
    }
  }
  return { routes, credentials };
}
