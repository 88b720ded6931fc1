import { createRequire } from "node:module";
import { lazyObject, once, suggest } from "@bottlekit/diagnostics";
import type { RE2JS } from "re2js";
import { z } from "zod";

/**
 * Egress route schema and matcher.
 *
 * Vocabulary follows the Gateway API HTTPRoute (`matches[].paths/methods/headers`), the shape
 * bot-bottle manifests use. Regexes (paths and header values) are compiled with re2js, so
 * matching is linear in the input whatever the pattern.
 */

/**
 * re2js, loaded on the first route regex (validated or matched): most route sets have none, and
 * loading it cost about 13-20 ms of the package import. Its CommonJS build, loaded synchronously;
 * RE2JS objects never leave this module.
 */
let re2: typeof RE2JS | undefined;
function re2js(): typeof RE2JS {
  re2 ??= (createRequire(import.meta.url)("re2js") as { RE2JS: typeof RE2JS }).RE2JS;
  return re2;
}

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** RFC 9110 token characters, for header names. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const OUTBOUND_DETECTORS = ["token_patterns", "known_secrets", "entropy"] as const;
export const INBOUND_DETECTORS = ["naive_injection_detection"] as const;
export type OutboundDetector = (typeof OUTBOUND_DETECTORS)[number];
export type InboundDetector = (typeof INBOUND_DETECTORS)[number];
export type OnMatch = "block" | "redact" | "supervise";

function hostProblem(host: string): string | undefined {
  if (host !== host.toLowerCase()) return "must be lower case";
  if (host.endsWith(".")) return "must not end with a dot";
  const labels = host.split(".");
  const wildcard = labels[0] === "*";
  const rest = wildcard ? labels.slice(1) : labels;
  if (wildcard && rest.length < 2) {
    return "a wildcard must be followed by at least two labels (`*.example.com`, not `*.com`)";
  }
  if (rest.length === 0) return "is empty";
  for (const label of rest) {
    if (label === "*") return "`*` is allowed only as the whole first label (`*.example.com`)";
    if (!HOST_LABEL.test(label)) return `has an invalid label ${JSON.stringify(label)}`;
  }
  if (host.length > 253) return "is longer than 253 characters";
  return undefined;
}

function regexProblem(source: string): string | undefined {
  try {
    re2js().compile(source);
    return undefined;
  } catch (error) {
    return `is not a valid RE2 regex (${error instanceof Error ? error.message : String(error)})`;
  }
}

/**
 * The route schemas are built on first use, not at import: zod builds a few hundred objects for
 * them, which every process importing this package paid (`bottle run` before its sandbox starts,
 * when it has no routes to validate), with `once` and `lazyObject` from @bottlekit/diagnostics; the
 * exported schemas stand for the built ones, so every importer keeps using them as before.
 */
const hostSchemaOf = once(() =>
  z.string().superRefine((host, ctx) => {
    const problem = hostProblem(host);
    if (problem) ctx.addIssue({ code: "custom", message: `host ${problem}` });
  }),
);

const pathMatchSchemaOf = once(() =>
  z
    .strictObject({
      type: z.enum(["prefix", "exact", "regex"]).default("prefix"),
      value: z.string().min(1),
    })
    .superRefine((m, ctx) => {
      if (m.type !== "regex" && !m.value.startsWith("/")) {
        ctx.addIssue({ code: "custom", path: ["value"], message: "path must start with `/`" });
      }
      if (m.type === "regex") {
        const problem = regexProblem(m.value);
        if (problem) ctx.addIssue({ code: "custom", path: ["value"], message: `regex ${problem}` });
      }
    }),
);

const headerMatchSchemaOf = once(() =>
  z
    .strictObject({
      name: z.string().regex(HEADER_NAME, "header name must be an HTTP token"),
      value: z.string(),
      type: z.enum(["exact", "regex"]).default("exact"),
    })
    .superRefine((m, ctx) => {
      if (m.type === "regex") {
        const problem = regexProblem(m.value);
        if (problem) ctx.addIssue({ code: "custom", path: ["value"], message: `regex ${problem}` });
      }
    }),
);

const routeMatchSchemaOf = once(() =>
  z.strictObject({
    paths: z.array(pathMatchSchemaOf()).optional(),
    methods: z.array(z.string().regex(/^[A-Za-z]+$/, "method must be letters only")).optional(),
    headers: z.array(headerMatchSchemaOf()).optional(),
  }),
);

const routeAuthSchemaOf = once(() =>
  z.strictObject({
    /** `Bearer` or `token` go into `Authorization: <scheme> <value>`; anything else is a header name. */
    scheme: z.string().regex(HEADER_NAME, "scheme must be `Bearer`, `token` or a header name"),
    /** Name of the host environment variable holding the credential. */
    token_ref: z.string().regex(ENV_NAME, "token_ref must be an environment variable name"),
  }),
);

const routeDlpSchemaOf = once(() =>
  z.strictObject({
    /** A list, or `false` for none. Omitted: all outbound detectors except the opt-in `entropy`. */
    outbound_detectors: z.union([z.array(z.enum(OUTBOUND_DETECTORS)), z.literal(false)]).optional(),
    /** A list, or `false` for none. Omitted: all inbound detectors. */
    inbound_detectors: z.union([z.array(z.enum(INBOUND_DETECTORS)), z.literal(false)]).optional(),
    outbound_on_match: z.enum(["block", "redact", "supervise"]).default("supervise"),
  }),
);

const routeSchemaOf = once(() =>
  z.strictObject({
    host: hostSchemaOf(),
    /** Omitted: the standard ports 443 and 80. */
    port: z.number().int().min(1).max(65535).optional(),
    auth: routeAuthSchemaOf().optional(),
    /** Omitted or empty: every request to the host matches. Otherwise one entry must match. */
    matches: z.array(routeMatchSchemaOf()).optional(),
    dlp: routeDlpSchemaOf().optional(),
    /** Placeholders are resolved in bodies only where a route opts in. */
    body_placeholders: z.boolean().optional(),
  }),
);

const routesSchemaOf = once(() => z.array(routeSchemaOf()));

/** One path entry of a route's `matches` (built when first used). */
export const pathMatchSchema = lazyObject(pathMatchSchemaOf);
/** One header entry of a route's `matches` (built when first used). */
export const headerMatchSchema = lazyObject(headerMatchSchemaOf);
/** One entry of a route's `matches` (built when first used). */
export const routeMatchSchema = lazyObject(routeMatchSchemaOf);
/** A route's `auth` (built when first used). */
export const routeAuthSchema = lazyObject(routeAuthSchemaOf);
/** A route's `dlp` (built when first used). */
export const routeDlpSchema = lazyObject(routeDlpSchemaOf);
/** One route (built when first used). */
export const routeSchema = lazyObject(routeSchemaOf);
/** A routes list (built when first used). */
export const routesSchema = lazyObject(routesSchemaOf);

export type Route = z.output<ReturnType<typeof routeSchemaOf>>;
export type RouteInput = z.input<ReturnType<typeof routeSchemaOf>>;
export type RouteMatch = z.output<ReturnType<typeof routeMatchSchemaOf>>;

/** JSON Schema of one route, generated from the zod schema. */
export function routeJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(routeSchemaOf(), { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
}

export interface RouteValidation {
  value: Route[] | undefined;
  warnings: string[];
  errors: string[];
}

/** Validates a routes list; errors are `"path: message"` strings with "did you mean" for typos. */
export function validateRoutes(input: unknown): RouteValidation {
  // No routes (a bottle that declares none): valid as the schema would find it, without building
  // the schema for it.
  if (
    Array.isArray(input) &&
    input.length === 0 &&
    Object.getPrototypeOf(input) === Array.prototype
  )
    return { value: [], warnings: [], errors: [] };
  const parsed = routesSchemaOf().safeParse(input);
  const warnings: string[] = [];
  if (parsed.success) {
    parsed.data.forEach((route, i) => {
      if (!route.matches || route.matches.length === 0) {
        warnings.push(`[${i}].matches: absent, every method and path on ${route.host} is allowed`);
      }
    });
    return { value: parsed.data, warnings, errors: [] };
  }
  const errors = parsed.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`));
    const where = path.join("").replace(/^\./, "") || "(root)";
    if (issue.code === "unrecognized_keys") {
      const hints = issue.keys.map((k) => {
        if (k === "role") return "`role` is reserved and rejected; remove it";
        const near = closest(k, Object.keys(routeSchemaOf().shape));
        return near ? `unknown key \`${k}\`, did you mean \`${near}\`?` : `unknown key \`${k}\``;
      });
      return `${where}: ${hints.join("; ")}`;
    }
    return `${where}: ${issue.message}`;
  });
  return { value: undefined, warnings, errors };
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  return suggest(word, candidates, 1)[0];
}

// ---------------------------------------------------------------------------------------------
// Matching

export interface RouteRequest {
  host: string;
  /** Omitted: 443. */
  port?: number;
  method: string;
  /** Path with or without the query string; the query is ignored for matching. */
  path: string;
  headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
}

export type RouteMatchReason =
  | "invalid_host"
  | "no_route_for_host"
  | "port_not_allowed"
  | "path_not_canonical"
  | "no_match_entry";

export type MatchRouteResult =
  | { ok: true; route: Route; index: number }
  | { ok: false; reason: RouteMatchReason; message: string };

const regexCache = new Map<string, RE2JS>();
function compiled(source: string): RE2JS {
  let re = regexCache.get(source);
  if (!re) {
    re = re2js().compile(source);
    if (regexCache.size > 1024) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

/** Lower-cases and strips one trailing dot; returns undefined for a name that is not a host. */
export function normalizeHost(host: string): string | undefined {
  let h = host.trim().toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h.length === 0 || h.length > 253) return undefined;
  if (h.startsWith("[") && h.endsWith("]")) return h; // IPv6 literal
  for (const label of h.split(".")) if (!HOST_LABEL.test(label)) return undefined;
  return h;
}

/** 2 = exact host, 1 = wildcard suffix match, 0 = no match. */
function hostScore(pattern: string, host: string): number {
  if (pattern === host) return 2;
  if (pattern.startsWith("*.")) {
    const suffix = pattern.slice(1); // ".example.com"
    if (host.endsWith(suffix) && host.length > suffix.length) return 1;
  }
  return 0;
}

/** Rejects dot segments (raw or percent-encoded), encoded slashes and backslashes: fail closed. */
function pathIsCanonical(path: string): boolean {
  if (!path.startsWith("/")) return false;
  if (/%2f|%5c|\\/i.test(path)) return false;
  for (const segment of path.split("/")) {
    const s = segment.replace(/%2e/gi, ".");
    if (s === "." || s === "..") return false;
  }
  return true;
}

function prefixMatches(prefix: string, path: string): boolean {
  const p = prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (p === "/") return true;
  if (!path.startsWith(p)) return false;
  return path.length === p.length || path[p.length] === "/";
}

function headerValues(request: RouteRequest, name: string): string[] {
  const wanted = name.toLowerCase();
  const out: string[] = [];
  for (const [k, v] of Object.entries(request.headers ?? {})) {
    if (k.toLowerCase() !== wanted || v === undefined) continue;
    if (typeof v === "string") out.push(v);
    else out.push(...v);
  }
  return out;
}

function entryMatches(
  entry: RouteMatch,
  method: string,
  path: string,
  request: RouteRequest,
): boolean {
  if (entry.methods && entry.methods.length > 0) {
    if (!entry.methods.some((m) => m.toUpperCase() === method)) return false;
  }
  if (entry.paths && entry.paths.length > 0) {
    const ok = entry.paths.some((p) => {
      if (p.type === "exact") return path === p.value;
      if (p.type === "prefix") return prefixMatches(p.value, path);
      return compiled(p.value).matches(path);
    });
    if (!ok) return false;
  }
  if (entry.headers && entry.headers.length > 0) {
    // bot-bottle semantics: one listed header matching is enough (OR).
    const ok = entry.headers.some((h) =>
      headerValues(request, h.name).some((v) =>
        h.type === "exact" ? v === h.value : compiled(h.value).matches(v),
      ),
    );
    if (!ok) return false;
  }
  return true;
}

/**
 * Finds the route a request may use. Exact host routes are tried before wildcard routes, and
 * longer wildcard suffixes before shorter ones; within one specificity, declaration order wins.
 * Cost: O(routes × entries) plus linear regex matches on the path and header values.
 */
export function matchRoute(routes: readonly Route[], request: RouteRequest): MatchRouteResult {
  const host = normalizeHost(request.host);
  if (!host) {
    return { ok: false, reason: "invalid_host", message: "request host is not a valid host name" };
  }
  const port = request.port ?? 443;
  const method = request.method.toUpperCase();
  const queryAt = request.path.search(/[?#]/);
  const path = queryAt === -1 ? request.path : request.path.slice(0, queryAt);

  const candidates = routes
    .map((route, index) => ({ route, index, score: hostScore(route.host, host) }))
    .filter((c) => c.score > 0)
    .sort(
      (a, b) => b.score - a.score || b.route.host.length - a.route.host.length || a.index - b.index,
    );
  if (candidates.length === 0) {
    return {
      ok: false,
      reason: "no_route_for_host",
      message: "no route declares the request host",
    };
  }
  const onPort = candidates.filter((c) =>
    c.route.port === undefined ? port === 443 || port === 80 : c.route.port === port,
  );
  if (onPort.length === 0) {
    return {
      ok: false,
      reason: "port_not_allowed",
      message: `no route for the request host allows port ${port}`,
    };
  }
  if (!pathIsCanonical(path)) {
    return {
      ok: false,
      reason: "path_not_canonical",
      message: "request path has dot segments, encoded slashes or backslashes",
    };
  }
  for (const c of onPort) {
    const entries = c.route.matches;
    if (!entries || entries.length === 0) return { ok: true, route: c.route, index: c.index };
    if (entries.some((e) => entryMatches(e, method, path, request))) {
      return { ok: true, route: c.route, index: c.index };
    }
  }
  return {
    ok: false,
    reason: "no_match_entry",
    message: `no matches entry of the routes for the request host allows this ${method} request`,
  };
}
