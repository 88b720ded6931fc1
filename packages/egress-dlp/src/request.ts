import { zlib } from "./decode.ts";
import type { OnMatch, OutboundDetector, Route } from "./route.ts";
import { budgetFinding, type Finding, type Scanner } from "./scan.ts";

/**
 * Request-level scanning: every surface of an outbound request (host labels, path, query, every
 * header, body) is scanned; bodies with `Content-Encoding` gzip/deflate/br are decoded first within
 * byte and ratio limits. `enforceOutbound` turns findings into an action per the route's
 * `dlp.outbound_on_match`: block, redact (replace, re-scan, fail closed), or supervise (hold and
 * ask a callback; timeout or rejection blocks).
 */

export interface OutboundRequest {
  method: string;
  host: string;
  port?: number;
  /** Path with the query string. */
  path: string;
  headers: Record<string, string | readonly string[] | undefined>;
  body?: string | Uint8Array;
}

export interface SurfaceLimits {
  /** Largest decoded body, in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
  /** Largest decoded/encoded size ratio for Content-Encoding. Default 100. */
  maxRatio?: number;
  /** Time budget for the whole request, in milliseconds. Default 2000. */
  maxMs?: number;
}

/** The surface holding every header name of a request, one per line. */
export const HEADER_NAMES = "header-names";

export interface Surface {
  surface: string;
  text: string;
}

export type SurfacesResult = { ok: true; surfaces: Surface[] } | { ok: false; finding: Finding };

function headerValue(headers: OutboundRequest["headers"], name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return typeof v === "string" ? v : v?.join(", ");
  }
  return undefined;
}

function decodeText(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return Buffer.from(bytes).toString("latin1"); // binary bodies: every byte stays visible
  }
}

/** Splits a request into the texts to scan. Fails closed on bodies that cannot be decoded in budget. */
export function requestSurfaces(
  request: OutboundRequest,
  limits: SurfaceLimits = {},
): SurfacesResult {
  const maxBody = limits.maxBodyBytes ?? 8 * 1024 * 1024;
  const maxRatio = limits.maxRatio ?? 100;
  const surfaces: Surface[] = [{ surface: "host", text: request.host }];
  const q = request.path.indexOf("?");
  surfaces.push({ surface: "path", text: q === -1 ? request.path : request.path.slice(0, q) });
  if (q !== -1) surfaces.push({ surface: "query", text: request.path.slice(q + 1) });
  const names: string[] = [];
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    names.push(name);
    for (const v of typeof value === "string" ? [value] : value) {
      surfaces.push({ surface: `header:${name.toLowerCase()}`, text: v });
    }
  }
  // Header names can carry data too (and, like host labels, lose their case on the way: HTTP/2
  // lowercases them). One surface for all of them, so a secret split across names still joins.
  if (names.length > 0) surfaces.push({ surface: HEADER_NAMES, text: names.join("\n") });
  if (request.body !== undefined) {
    let bytes = typeof request.body === "string" ? Buffer.from(request.body, "utf8") : request.body;
    const encoding = (headerValue(request.headers, "content-encoding") ?? "").toLowerCase().trim();
    if (encoding && encoding !== "identity") {
      const cap = Math.min(maxBody, Math.max(1024, bytes.length * maxRatio));
      try {
        for (const layer of encoding
          .split(",")
          .map((e) => e.trim())
          .reverse()) {
          if (layer === "gzip" || layer === "x-gzip")
            bytes = zlib().gunzipSync(bytes, { maxOutputLength: cap });
          else if (layer === "deflate") {
            try {
              bytes = zlib().inflateSync(bytes, { maxOutputLength: cap });
            } catch {
              bytes = zlib().inflateRawSync(bytes, { maxOutputLength: cap });
            }
          } else if (layer === "br")
            bytes = zlib().brotliDecompressSync(bytes, { maxOutputLength: cap });
          else if (layer !== "identity") throw new Error(`unsupported content-encoding ${layer}`);
        }
      } catch {
        return {
          ok: false,
          finding: { ...budgetFinding("body", "bytes", 0), rule: "undecodable-body" },
        };
      }
    }
    if (bytes.length > maxBody)
      return { ok: false, finding: budgetFinding("body", "bytes", bytes.length) };
    surfaces.push({
      surface: "body",
      text: typeof request.body === "string" && !encoding ? request.body : decodeText(bytes),
    });
  }
  return { ok: true, surfaces };
}

export interface RequestScan {
  findings: Finding[];
  blocked: boolean;
  surfaces: Surface[];
}

const DEFAULT_DETECTORS: readonly OutboundDetector[] = ["token_patterns", "known_secrets"];

/** The outbound detectors a route asks for (omitted: all but the opt-in `entropy`; `false`: none). */
export function routeDetectors(route: Route | undefined): readonly OutboundDetector[] {
  const d = route?.dlp?.outbound_detectors;
  if (d === false) return [];
  return d ?? DEFAULT_DETECTORS;
}

/** Surfaces whose case the network does not keep. */
const CASELESS: ReadonlySet<string> = new Set(["host", HEADER_NAMES]);

/** Scans every surface of a request. Findings are filtered to `detectors` (default: all of the scanner's). */
export function scanRequest(
  scanner: Scanner,
  request: OutboundRequest,
  options: SurfaceLimits & {
    detectors?: readonly OutboundDetector[];
    approved?: ReadonlySet<string>;
  } = {},
): RequestScan {
  const started = performance.now();
  const maxMs = options.maxMs ?? 2000;
  const split = requestSurfaces(request, options);
  if (!split.ok) return { findings: [split.finding], blocked: true, surfaces: [] };
  const wanted = new Set<string>(options.detectors ?? scanner.detectors);
  wanted.add("budget");
  const findings: Finding[] = [];
  for (const s of split.surfaces) {
    if (performance.now() - started > maxMs) {
      findings.push(budgetFinding(s.surface, "time", s.text.length));
      break;
    }
    const found = scanner.scan(s.text, s.surface).findings;
    // Host labels and header names lose their case on the way (DNS, HTTP/2), so a token pattern
    // with a fixed upper-case shape (AKIA…) must also be tried on the upper-cased text. ASCII
    // letters only, so positions stay the same.
    if (CASELESS.has(s.surface)) {
      const upper = s.text.replace(/[a-z]+/g, (m) => m.toUpperCase());
      if (upper !== s.text) {
        // one finding per span: the lower-case AWS rule and the upper-cased rescan see the same key
        const seen = new Set(found.map((f) => `${f.start}\u0000${f.end}`));
        for (const f of scanner.scan(upper, s.surface).findings) {
          if (!seen.has(`${f.start}\u0000${f.end}`)) found.push(f);
        }
      }
    }
    for (const f of found) {
      if (!wanted.has(f.detector)) continue;
      if (options.approved?.has(f.fingerprint) && f.detector !== "budget") continue;
      findings.push(f);
    }
  }
  return {
    findings,
    blocked: findings.some((f) => f.severity === "block"),
    surfaces: split.surfaces,
  };
}

const REDACTED = "[REDACTED]";

function redactText(text: string, spans: Finding[]): string {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (const f of sorted) {
    if (f.end <= at) continue;
    out += text.slice(at, Math.max(at, f.start)) + REDACTED;
    at = f.end;
  }
  return out + text.slice(at);
}

/** Replaces blocking findings in place (path, query, headers, body). The host is never rewritten. */
export function redactRequest(request: OutboundRequest, scan: RequestScan): OutboundRequest {
  const by = new Map<string, Finding[]>();
  for (const f of scan.findings) {
    if (f.severity !== "block") continue;
    const list = by.get(f.surface) ?? [];
    list.push(f);
    by.set(f.surface, list);
  }
  const q = request.path.indexOf("?");
  let path = q === -1 ? request.path : request.path.slice(0, q);
  let query = q === -1 ? undefined : request.path.slice(q + 1);
  if (by.has("path")) path = redactText(path, by.get("path") as Finding[]);
  if (query !== undefined && by.has("query"))
    query = redactText(query, by.get("query") as Finding[]);
  const headers: OutboundRequest["headers"] = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const spans = by.get(`header:${name.toLowerCase()}`);
    if (!spans || value === undefined) {
      headers[name] = value;
      continue;
    }
    // with repeated header values, findings cannot be told apart by value: redact each fully
    headers[name] =
      typeof value === "string" ? redactText(value, spans) : value.map(() => REDACTED);
  }
  const out: OutboundRequest = {
    ...request,
    path: query === undefined ? path : `${path}?${query}`,
    headers,
  };
  const bodySpans = by.get("body");
  if (bodySpans && request.body !== undefined) {
    const bodyText = scan.surfaces.find((s) => s.surface === "body")?.text ?? "";
    out.body = redactText(bodyText, bodySpans);
    // the body is now decoded text: drop the encoding and length so the caller recomputes them
    for (const k of Object.keys(out.headers)) {
      const l = k.toLowerCase();
      if (l === "content-encoding" || l === "content-length") delete out.headers[k];
    }
  }
  return out;
}

export interface SupervisionProposal {
  host: string;
  method: string;
  /** Findings without values: detector, rule, surface, fingerprint. */
  findings: Pick<Finding, "detector" | "rule" | "surface" | "fingerprint" | "severity">[];
  reason: string;
}

export type SupervisionAnswer = "approve" | "reject";

export interface EnforceOptions extends SurfaceLimits {
  scanner: Scanner;
  route: Route | undefined;
  request: OutboundRequest;
  /** Overrides the route's `dlp.outbound_on_match` (default `supervise`). */
  onMatch?: OnMatch;
  /** Asked under `supervise`. Without it, supervise blocks. */
  supervise?: (proposal: SupervisionProposal, signal: AbortSignal) => Promise<SupervisionAnswer>;
  /** Milliseconds to wait for the supervisor. Default 300 000. */
  superviseTimeoutMs?: number;
  /** Fingerprints approved earlier in this session; approvals are added here. */
  approved?: Set<string>;
}

export type Decision =
  | { action: "allow"; request: OutboundRequest; findings: Finding[] }
  | { action: "redact"; request: OutboundRequest; findings: Finding[] }
  | { action: "block"; reason: string; findings: Finding[] };

/** Scans a request and applies the route's policy. Fails closed on every error path. */
export async function enforceOutbound(options: EnforceOptions): Promise<Decision> {
  const { scanner, route, request } = options;
  const detectors = routeDetectors(route);
  if (detectors.length === 0) return { action: "allow", request, findings: [] };
  const first = scanRequest(scanner, request, {
    ...options,
    detectors,
    approved: options.approved,
  });
  if (!first.blocked) return { action: "allow", request, findings: first.findings };
  const blocking = first.findings.filter((f) => f.severity === "block");
  if (blocking.some((f) => f.detector === "budget")) {
    return {
      action: "block",
      reason: "scan exceeded its time or byte budget",
      findings: first.findings,
    };
  }
  const mode = options.onMatch ?? route?.dlp?.outbound_on_match ?? "supervise";
  if (mode === "block")
    return { action: "block", reason: "secret in outbound request", findings: first.findings };
  if (mode === "redact") {
    if (blocking.some((f) => f.surface === "host" || f.surface === HEADER_NAMES)) {
      return {
        action: "block",
        reason: "secret in the host name or a header name cannot be redacted",
        findings: first.findings,
      };
    }
    const redacted = redactRequest(request, first);
    const again = scanRequest(scanner, redacted, {
      ...options,
      detectors,
      approved: options.approved,
    });
    if (again.blocked) {
      return {
        action: "block",
        reason: "secret still present after redaction",
        findings: again.findings,
      };
    }
    return { action: "redact", request: redacted, findings: first.findings };
  }
  // supervise
  if (!options.supervise) {
    return {
      action: "block",
      reason: "supervise requested but no supervisor is configured",
      findings: first.findings,
    };
  }
  const proposal: SupervisionProposal = {
    host: request.host,
    method: request.method,
    findings: blocking.map(({ detector, rule, surface, fingerprint, severity }) => ({
      detector,
      rule,
      surface,
      fingerprint,
      severity,
    })),
    reason: `${blocking.length} blocking finding(s): ${[...new Set(blocking.map((f) => f.rule))].join(", ")}`,
  };
  const controller = new AbortController();
  const timeoutMs = options.superviseTimeoutMs ?? 300_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  let answer: SupervisionAnswer | "timeout" | "error";
  try {
    answer = await Promise.race([options.supervise(proposal, controller.signal), timeout]);
  } catch {
    answer = "error";
  } finally {
    if (timer) clearTimeout(timer);
    controller.abort();
  }
  if (answer !== "approve") {
    const why =
      answer === "reject"
        ? "rejected by the supervisor"
        : answer === "timeout"
          ? "supervisor timed out"
          : "supervisor failed";
    return { action: "block", reason: why, findings: first.findings };
  }
  for (const f of blocking) options.approved?.add(f.fingerprint);
  return { action: "allow", request, findings: first.findings };
}
