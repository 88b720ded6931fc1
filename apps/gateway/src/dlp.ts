import type { IncomingHttpHeaders } from "node:http";
import { createScanner, type Finding } from "@bottlekit/egress-dlp";
import { listProviders } from "@bottlekit/provider-registry";
import type { GatewayConfig } from "./config.ts";
import type { DlpFinding, GatewayDlp, InboundScan, OutboundVerdict } from "./dlp-types.ts";
import { createInjectionScan } from "./injection.ts";

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

/**
 * The gateway's DLP policy on top of egress-dlp: outbound scan of headers and body with token
 * patterns and known secrets; `block` refuses, `redact` replaces each finding in the body with a
 * marker and re-scans (anything left, or a finding in a header, blocks: fail closed). Inbound:
 * an incremental injection scan of the model's text.
 */
export function createGatewayDlp(
  config: GatewayConfig,
  env: NodeJS.ProcessEnv,
  registry: RegistryLike,
): GatewayDlp {
  const secrets = knownSecrets(config, env, registry);
  const secretValues = new Set(secrets.map((s) => s.value));
  const scanner = createScanner({
    detectors: config.dlp.outbound.detectors,
    knownSecrets: secrets,
  });
  const onMatch = config.dlp.outbound.on_match;
  const inboundEnabled = config.dlp.inbound.enabled;

  function scanHeaders(headers: IncomingHttpHeaders, skip: string | undefined): DlpFinding[] {
    const out: DlpFinding[] = [];
    for (const name in headers) {
      if (name === skip || SKIP_HEADERS.has(name)) continue;
      const v = headers[name];
      const value = Array.isArray(v) ? v.join(", ") : v;
      if (value === undefined || value.length === 0) continue;
      const r = scanner.scan(value, `header:${name}`);
      for (const f of r.findings) out.push(toDlp(f));
    }
    return out;
  }

  return {
    inboundAction: config.dlp.inbound.on_match,
    outbound(headers, body, skipHeader): OutboundVerdict {
      const headerFindings = scanHeaders(headers, skipHeader);
      const r = scanner.scan(body, "body");
      const bodyFindings = r.findings;
      const findings = headerFindings.concat(bodyFindings.map(toDlp));
      const blocking = findings.some((f) => f.severity === "block");
      if (!blocking) return { action: "allow", body, findings };
      if (onMatch === "block" || headerFindings.some((f) => f.severity === "block")) {
        return { action: "block", body, findings };
      }
      // redact: replace block-severity ranges right to left, then re-scan.
      const ranges = bodyFindings
        .filter((f) => f.severity === "block" && f.detector !== "budget")
        .map((f) => [f.start, f.end, f.rule] as const)
        .sort((a, b) => b[0] - a[0]);
      if (ranges.length !== bodyFindings.filter((f) => f.severity === "block").length) {
        return { action: "block", body, findings };
      }
      let red = body;
      let lastStart = Infinity;
      for (const [start, end, rule] of ranges) {
        const e = Math.min(end, lastStart);
        if (start >= e) continue;
        red = `${red.slice(0, start)}[REDACTED:${rule.replace(/[^A-Za-z0-9_.-]/g, "_")}]${red.slice(e)}`;
        lastStart = start;
      }
      const again = scanner.scan(red, "body");
      if (again.blocked) return { action: "block", body, findings };
      return { action: "redact", body: red, findings };
    },
    inbound(): InboundScan {
      return inboundEnabled ? createInjectionScan() : { write: () => [], end: () => [] };
    },
    isProviderCredential(value: string): boolean {
      if (secretValues.has(value)) return true;
      return scanner
        .scan(value, "credential")
        .findings.some((f) => f.detector === "token_patterns" || f.detector === "known_secrets");
    },
  };
}
