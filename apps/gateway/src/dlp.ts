import type { IncomingHttpHeaders } from "node:http";
import {
  createScanner,
  type Finding,
  matchRoute,
  type OutboundDetector,
  type Route,
  type Scanner,
  validateRoutes,
} from "@bottlekit/egress-dlp";
import { listProviders } from "@bottlekit/provider-registry";
import type { GatewayConfig } from "./config.ts";
import type { DlpFinding, GatewayDlp, InboundScan, OutboundVerdict } from "./dlp-types.ts";
import { createInjectionScan, scanInjectionOnce, WARN_MIN_SCAN } from "./injection.ts";

/** The structural part of the registry used here: which env vars hold credentials. */
interface RegistryLike {
  readonly config: { readonly providers: readonly { readonly accessKeyEnv?: string }[] };
}

// Headers that never carry user data worth scanning and are long/noisy.
const SKIP_HEADERS = new Set([
  "content-length",
  "content-type",
  "accept",
  "accept-encoding",
  "connection",
  "host",
]);

/**
 * Header values a scanner found nothing in, remembered per scanner: a client sends the same
 * headers on every call (an SDK's `user-agent`, `x-stainless-*`, `anthropic-version`, …), and
 * scanning each again costs a scanner call per header per request. Only a value with no finding
 * at all is remembered, keyed by the header name and the exact value, so the verdict is the one
 * a fresh scan of the same bytes gives; values longer than `CLEAN_HEADER_MAX` are always scanned.
 * Bounded: cleared when it reaches `CLEAN_HEADER_ENTRIES`. O(1) per header.
 */
const CLEAN_HEADER_MAX = 512;
const CLEAN_HEADER_ENTRIES = 4096;
const cleanHeaders = new WeakMap<Scanner, Set<string>>();

function toDlp(f: Finding): DlpFinding {
  return {
    detector: f.detector,
    rule: f.rule,
    surface: f.surface,
    severity: f.severity,
    fingerprint: f.fingerprint,
  };
}

/**
 * Every credential the gateway holds (values of the env vars named by the catalog and the
 * config) plus canaries and extra known secrets named in the config. Values stay in memory only;
 * findings carry the env var name and a keyed fingerprint.
 */
export function knownSecrets(
  config: GatewayConfig,
  env: NodeJS.ProcessEnv,
  registry: RegistryLike,
): { name: string; value: string }[] {
  const names = new Set<string>();
  for (const p of listProviders()) for (const n of p.apiKeyEnv) names.add(n);
  for (const e of registry.config.providers) if (e.accessKeyEnv) names.add(e.accessKeyEnv);
  for (const n of config.dlp.outbound.canary_env) names.add(n);
  for (const n of config.dlp.outbound.known_secret_env) names.add(n);
  const out: { name: string; value: string }[] = [];
  const seen = new Set<string>();
  for (const n of names) {
    const v = env[n];
    // Very short values cannot be told from ordinary text; the catalog's keys are far longer.
    if (v !== undefined && v.length >= 8 && !seen.has(v)) {
      seen.add(v);
      out.push({ name: n, value: v });
    }
  }
  return out;
}

interface Policy {
  scanner: Scanner | undefined;
  onMatch: "block" | "redact";
  inbound: boolean;
}

/**
 * The gateway's DLP policy on top of egress-dlp: outbound scan of headers and body with token
 * patterns and known secrets; `block` refuses, `redact` replaces each finding in the body with a
 * marker and re-scans (anything left, or a finding in a header, blocks: fail closed). Inbound:
 * an incremental injection scan of the model's text.
 *
 * When the config declares egress `routes`, the route covering the upstream decides the
 * detectors and the action (`supervise` has no supervisor here, so it blocks), and an upstream no
 * route covers is refused. Policies are computed once per upstream and cached.
 */
export function createGatewayDlp(
  config: GatewayConfig,
  env: NodeJS.ProcessEnv,
  registry: RegistryLike,
  /** A bottle's effective manifest routes that carry `dlp` settings (see manifests.ts). */
  bottleRoutes?: (bottle: string) => readonly Route[] | undefined,
): PreparedGatewayDlp {
  const secrets = knownSecrets(config, env, registry);
  const secretValues = new Set(secrets.map((s) => s.value));
  const notProviderCredential = new Set<string>();
  const scanners = new Map<string, Scanner>();
  const scannerFor = (detectors: readonly OutboundDetector[]): Scanner | undefined => {
    if (detectors.length === 0) return undefined;
    const key = [...detectors].sort().join(",");
    let sc = scanners.get(key);
    if (sc === undefined) {
      sc = lazyScanner(detectors, () => createScanner({ detectors, knownSecrets: secrets }));
      scanners.set(key, sc);
    }
    return sc;
  };
  const defaultPolicy: Policy = {
    scanner: scannerFor(config.dlp.outbound.detectors),
    onMatch: config.dlp.outbound.on_match,
    inbound: config.dlp.inbound.enabled,
  };
  const credentialScanner = scannerFor(["token_patterns", "known_secrets"]) as Scanner;
  const routes: Route[] | undefined =
    config.routes === undefined ? undefined : (validateRoutes(config.routes).value ?? []);
  const policies = new Map<string, Policy | undefined>();

  function policyFor(upstream: { origin: string; path: string }): Policy | undefined {
    if (routes === undefined) return defaultPolicy;
    const key = upstream.origin + upstream.path;
    if (policies.has(key)) return policies.get(key);
    const url = new URL(key);
    const m = matchRoute(routes, {
      host: url.hostname,
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      method: "POST",
      path: url.pathname,
    });
    let p: Policy | undefined;
    if (m.ok) {
      const d = m.route.dlp;
      const det = d?.outbound_detectors;
      const detectors: readonly OutboundDetector[] =
        det === false ? [] : det === undefined ? ["token_patterns", "known_secrets"] : det;
      p = {
        scanner: scannerFor(detectors),
        onMatch:
          d?.outbound_on_match === "redact"
            ? "redact"
            : d === undefined
              ? defaultPolicy.onMatch
              : "block",
        inbound: d?.inbound_detectors !== false && config.dlp.inbound.enabled,
      };
    }
    policies.set(key, p);
    return p;
  }

  /**
   * The config's policy for `upstream`, made stricter by the `dlp` of the calling bottle's own
   * manifest route for that host: detectors are the union, `block` (or `supervise`, which has no
   * supervisor here) beats `redact`, and the inbound scan runs when either side asks for it. A
   * bottle's manifest can only tighten what the gateway config allows, never loosen it.
   */
  const bottlePolicies = new Map<string, Policy | undefined>();
  function policyForBottle(
    upstream: { origin: string; path: string },
    bottle: string | undefined,
  ): Policy | undefined {
    const base = policyFor(upstream);
    if (base === undefined || bottle === undefined || bottleRoutes === undefined) return base;
    const own = bottleRoutes(bottle);
    if (own === undefined || own.length === 0) return base;
    const key = `${bottle}\u0000${upstream.origin}${upstream.path}`;
    if (bottlePolicies.has(key)) return bottlePolicies.get(key);
    const url = new URL(upstream.origin + upstream.path);
    const m = matchRoute(own, {
      host: url.hostname,
      port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
      method: "POST",
      path: url.pathname,
    });
    let p = base;
    const d = m.ok ? m.route.dlp : undefined;
    if (d !== undefined) {
      const baseDetectors = base.scanner?.detectors ?? [];
      const own =
        d.outbound_detectors === false
          ? []
          : d.outbound_detectors === undefined
            ? (["token_patterns", "known_secrets"] as const)
            : d.outbound_detectors;
      const detectors = [...new Set<OutboundDetector>([...baseDetectors, ...own])];
      p = {
        scanner: scannerFor(detectors),
        onMatch: base.onMatch === "block" || d.outbound_on_match !== "redact" ? "block" : "redact",
        inbound:
          base.inbound || (d.inbound_detectors !== false && d.inbound_detectors !== undefined),
      };
    }
    bottlePolicies.set(key, p);
    return p;
  }

  function scanHeaders(
    scanner: Scanner,
    headers: IncomingHttpHeaders,
    skip: string | undefined,
  ): DlpFinding[] {
    const out: DlpFinding[] = [];
    let clean = cleanHeaders.get(scanner);
    if (clean === undefined) {
      clean = new Set();
      cleanHeaders.set(scanner, clean);
    }
    for (const name in headers) {
      if (name === skip || SKIP_HEADERS.has(name)) continue;
      const v = headers[name];
      const value = Array.isArray(v) ? v.join(", ") : v;
      if (value === undefined || value.length === 0) continue;
      const key = value.length <= CLEAN_HEADER_MAX ? `${name}\u0000${value}` : undefined;
      if (key !== undefined && clean.has(key)) continue;
      const r = scanner.scan(value, `header:${name}`);
      if (r.findings.length === 0 && !r.blocked) {
        if (key !== undefined) {
          if (clean.size >= CLEAN_HEADER_ENTRIES) clean.clear();
          clean.add(key);
        }
        continue;
      }
      for (const f of r.findings) out.push(toDlp(f));
    }
    return out;
  }

  const inboundMinScan = config.dlp.inbound.on_match === "block" ? 0 : WARN_MIN_SCAN;
  return {
    prepare() {
      // Builds (and so checks: a known secret too short to protect throws) what every call uses.
      if (defaultPolicy.scanner !== undefined) void defaultPolicy.scanner.knownSecretCount;
      void credentialScanner.knownSecretCount;
    },
    inboundAction: config.dlp.inbound.on_match,
    outbound(headers, body, skipHeader, upstream, bottle): OutboundVerdict {
      const policy = policyForBottle(upstream, bottle);
      if (policy === undefined) return { action: "no_route", body, findings: [] };
      const scanner = policy.scanner;
      if (scanner === undefined) return { action: "allow", body, findings: [] };
      const headerFindings = scanHeaders(scanner, headers, skipHeader);
      const r = scanner.scan(body, "body");
      const bodyFindings = r.findings;
      const findings = headerFindings.concat(bodyFindings.map(toDlp));
      const blocking = findings.some((f) => f.severity === "block");
      if (!blocking) return { action: "allow", body, findings };
      if (policy.onMatch === "block" || headerFindings.some((f) => f.severity === "block")) {
        return { action: "block", body, findings };
      }
      // redact: in the decoded JSON string values (keys too), re-encoded, then re-scanned.
      if (bodyFindings.some((f) => f.severity === "block" && f.detector === "budget")) {
        return { action: "block", body, findings };
      }
      const red = redactJsonBody(body, scanner, secrets);
      if (red === undefined) return { action: "block", body, findings };
      const again = scanner.scan(red, "body");
      if (again.blocked) return { action: "block", body, findings };
      return { action: "redact", body: red, findings };
    },
    inbound(upstream, bottle): InboundScan {
      if (policyForBottle(upstream, bottle)?.inbound !== true) return NO_SCAN;
      // Findings that only warn may be reported a few hundred characters late: batch the
      // scanner's work. Findings that block are found before the piece that carries them leaves.
      return createInjectionScan({ minScan: inboundMinScan });
    },
    inboundOnce(upstream, text, bottle): DlpFinding[] {
      return policyForBottle(upstream, bottle)?.inbound === true ? scanInjectionOnce(text) : [];
    },
    isProviderCredential(value: string): boolean {
      if (secretValues.has(value)) return true;
      // A client re-sends the same non-provider credential on every call (e.g. a placeholder
      // `Bearer local` on loopback): its negative verdict is remembered. Positive verdicts are
      // never cached, so no provider credential is kept beyond the call.
      if (notProviderCredential.has(value)) return false;
      const found = credentialScanner
        .scan(value, "credential")
        .findings.some((f) => f.detector === "token_patterns" || f.detector === "known_secrets");
      if (!found && value.length <= 512) {
        if (notProviderCredential.size >= 1024) notProviderCredential.clear();
        notProviderCredential.add(value);
      }
      return found;
    },
  };
}

/**
 * The gateway's DLP, and `prepare()`: builds the scanners every call uses (the default policy's
 * and the credential check's), which throws when the config cannot be enforced (e.g. a known
 * secret too short to protect). Until then each scanner is built by the first call that uses it.
 */
export interface PreparedGatewayDlp extends GatewayDlp {
  prepare(): void;
}

const NO_SCAN: InboundScan = { write: () => [], end: () => [] };

/**
 * A scanner built on its first use, not when the gateway starts: building one (the token rules'
 * tables, the known-secret automaton) is a large part of a gateway's start-up, and an embedded
 * controller (`bottle run`) often serves no model call at all. The build is synchronous inside
 * the first call, so no text is ever passed on unscanned; a build that throws throws in that
 * call (which refuses the request) and is tried again on the next one.
 */
function lazyScanner(detectors: readonly OutboundDetector[], build: () => Scanner): Scanner {
  let built: Scanner | undefined;
  const real = (): Scanner => {
    built ??= build();
    return built;
  };
  return {
    detectors,
    get knownSecretCount() {
      return real().knownSecretCount;
    },
    scan: (text, surface) => real().scan(text, surface),
    measure: (text, surface) => real().measure(text, surface),
    fingerprint: (value) => real().fingerprint(value),
  };
}

/** The marker that replaces a redacted secret. */
function marker(rule: string): string {
  return `[REDACTED:${rule.replace(/[^A-Za-z0-9_.-]/g, "_")}]`;
}

/** Block-severity findings that do not contain another block finding's range. */
function narrowest(findings: readonly Finding[]): Finding[] {
  const block = findings.filter((f) => f.severity === "block");
  return block.filter(
    (f) =>
      !block.some(
        (g) => g !== f && g.start >= f.start && g.end <= f.end && g.end - g.start < f.end - f.start,
      ),
  );
}

/** Replaces each block-severity finding's range in `text`, right to left (overlaps merged). */
function redactRanges(text: string, findings: readonly Finding[]): string {
  const ranges = findings
    .filter((f) => f.severity === "block")
    .map((f) => [f.start, f.end, f.rule] as const)
    .sort((a, b) => b[0] - a[0]);
  let out = text;
  let lastStart = Number.POSITIVE_INFINITY;
  for (const [start, end, rule] of ranges) {
    const e = Math.min(end, lastStart);
    if (start >= e) continue;
    out = `${out.slice(0, start)}${marker(rule)}${out.slice(e)}`;
    lastStart = start;
  }
  return out;
}

/**
 * Redacts secrets inside a JSON body where they live: in the decoded string values (and keys),
 * not in the raw text, where escapes (`\\`, `\uXXXX`) shift offsets and a replacement could
 * cut an escape in half. Each string is scanned on its own and the body is re-encoded with
 * `JSON.stringify`, so everything but the secrets is unchanged and the result always parses.
 * Undefined when the body is not JSON or a string cannot be scanned (the caller blocks).
 * Linear in the body: one parse, one scan per string, one serialization.
 */
export function redactJsonBody(
  body: string,
  scanner: Scanner,
  known: readonly { name: string; value: string }[] = [],
): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  let failed = false;
  // A string holding a backslash is also scanned as decoded escapes, and a finding in that
  // layer spans the whole string; the same secret is found in the plain layer with its exact
  // range. Redact the narrowest findings first, re-scan, and widen only while something is left
  // (a secret that exists only in a decoded layer); still blocked after that: refuse.
  const clean = (text: string): string => {
    if (text.length === 0) return text;
    // Known secrets are replaced where they literally are first: egress-dlp reports one finding
    // per secret, and after a `\\` that finding spans the decoded-escape layer (from the start
    // of the string), not the secret.
    let out = text;
    for (const k of known) if (out.includes(k.value)) out = out.replaceAll(k.value, marker(k.name));
    for (let round = 0; round < 3; round++) {
      const r = scanner.scan(out, "body");
      if (r.findings.some((f) => f.severity === "block" && f.detector === "budget")) {
        failed = true;
        return out;
      }
      if (!r.blocked) return out;
      out = redactRanges(out, narrowest(r.findings));
    }
    if (scanner.scan(out, "body").blocked) failed = true;
    return out;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return clean(v);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === "object" && v !== null) {
      // A null prototype: a "__proto__" key stays a plain key, as JSON.parse made it.
      const out: Record<string, unknown> = Object.create(null);
      for (const [k, val] of Object.entries(v)) out[clean(k)] = walk(val);
      return out;
    }
    return v;
  };
  const result = JSON.stringify(walk(parsed));
  return failed ? undefined : result;
}
