import { createHmac, randomBytes } from "node:crypto";
import { EgressDlpError } from "./errors.ts";
import type { KnownSecret } from "./known.ts";
import type { Route } from "./route.ts";

/**
 * Credential placeholders. The agent's environment holds `bottlekit:resolve:env:NAME` (OpenShell's
 * `openshell:resolve:env:NAME` is accepted too), the whole-token form `…BOTTLEKIT-RESOLVE-ENV-NAME`,
 * or a format-preserving placeholder shaped like the real token (same prefix, length and character
 * classes) for SDKs that validate token shape. The gateway resolves placeholders only:
 *   - on routes bound to that credential (`auth.token_ref`, or `bindings`),
 *   - in header values (Basic auth is decoded, resolved and re-encoded), query values and path
 *     segments; in bodies only where the route sets `body_placeholders: true`.
 * Unknown placeholders, placeholders toward an unbound route, and resolved values containing CR,
 * LF or NUL (or, in a path, `/ \ ? #` or `..`) are refused. Every placeholder is also a canary:
 * `canaries()` returns them as known secrets for the outbound scanner, which runs on the request
 * with the legitimately resolved placeholders masked, so any other copy is exfiltration.
 */

export const PLACEHOLDER_PATTERN =
  /(?:bottlekit|openshell)(?::|%3[aA])resolve(?::|%3[aA])env(?::|%3[aA])([A-Za-z_][A-Za-z0-9_]{0,127})/g;
const ALIAS_PATTERN =
  /[A-Za-z0-9._-]{0,64}(?:BOTTLEKIT|OPENSHELL)-RESOLVE-ENV-([A-Za-z_][A-Za-z0-9_]{0,127})/g;

export type PlaceholderFailure =
  | "unknown_placeholder"
  | "unbound_route"
  | "body_denied"
  | "invalid_value"
  | "invalid_path_value";

export interface PlaceholderRequest {
  method: string;
  host: string;
  port?: number;
  /** Path with query string. */
  path: string;
  headers: Record<string, string | readonly string[] | undefined>;
  body?: string;
}

export interface ResolvedUse {
  name: string;
  surface: string;
}

export type ResolveResult =
  | {
      ok: true;
      /** The request to forward, with real credentials. Never log it. */
      request: PlaceholderRequest;
      /** The same request with each resolved placeholder replaced by `[CREDENTIAL]`: scan and log this one. */
      scanView: PlaceholderRequest;
      used: ResolvedUse[];
    }
  | { ok: false; reason: PlaceholderFailure; surface: string; name?: string; message: string };

export interface PlaceholderResolverOptions {
  /** Credential values by env name, as held by the gateway (never by the agent). */
  credentials: Readonly<Record<string, string>>;
  /** Extra bindings: credential name -> hosts (exact or `*.example.com`) it may be sent to. */
  bindings?: Readonly<Record<string, readonly string[]>>;
  /** Key for format-preserving placeholders; random per resolver when omitted. */
  key?: string | Uint8Array;
}

export interface PlaceholderResolver {
  /** `bottlekit:resolve:env:NAME`. */
  placeholderFor(name: string): string;
  /** A value shaped like the real credential that can stand in for it in the agent's env. */
  shapedPlaceholderFor(name: string): string;
  /** Env for the agent: each name mapped to its placeholder (shaped ones where `shaped` lists the name). */
  agentEnv(shaped?: readonly string[]): Record<string, string>;
  /** Every placeholder as a known secret, for the outbound scanner (canaries). */
  canaries(): KnownSecret[];
  resolve(request: PlaceholderRequest, route: Route | undefined): ResolveResult;
}

const KNOWN_PREFIXES = [
  "sk-ant-admin01-",
  "sk-ant-api03-",
  "sk-ant-oat01-",
  "sk-proj-",
  "sk-svcacct-",
  "github_pat_",
  "sk_live_",
  "sk_test_",
  "rk_live_",
  "glpat-",
  "xoxb-",
  "xoxp-",
  "xapp-",
  "ghp_",
  "gho_",
  "ghu_",
  "ghs_",
  "ghr_",
  "npm_",
  "gsk_",
  "hf_",
  "AKIA",
  "AIza",
  "dapi",
  "SG.",
  "sk-",
];

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

let crcTable: Int32Array | undefined;
function crc32(text: string): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = -1;
  for (const b of Buffer.from(text, "utf8"))
    crc = (crcTable[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

function base62(n: number, width: number): string {
  let out = "";
  let v = n;
  for (let i = 0; i < width; i++) {
    out = B62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

/**
 * Same prefix, same length, same character class at every position, bytes from an HMAC stream.
 * GitHub and npm tokens end in a CRC32 (base62, 6 characters) of the rest; the placeholder's is
 * made wrong on purpose, so it can never validate.
 */
export function shapePlaceholder(real: string, seed: Uint8Array): string {
  const prefix = KNOWN_PREFIXES.find((p) => real.startsWith(p)) ?? "";
  let stream = createHmac("sha256", seed).update(real.length.toString()).digest();
  let si = 0;
  const nextByte = (): number => {
    if (si >= stream.length) {
      stream = createHmac("sha256", seed).update(stream).digest();
      si = 0;
    }
    return stream[si++] as number;
  };
  let out = prefix;
  for (let i = prefix.length; i < real.length; i++) {
    const c = real[i] as string;
    if (c >= "0" && c <= "9") out += String.fromCharCode(48 + (nextByte() % 10));
    else if (c >= "a" && c <= "z") out += String.fromCharCode(97 + (nextByte() % 26));
    else if (c >= "A" && c <= "Z") out += String.fromCharCode(65 + (nextByte() % 26));
    else out += c;
  }
  if (/^(?:gh[pousr]_|npm_)[A-Za-z0-9]{36}$/.test(out)) {
    const body = out.slice(0, -6);
    const valid = base62(crc32(body.slice(4)), 6);
    let tail = out.slice(-6);
    if (tail === valid) tail = base62((crc32(body.slice(4)) + 1) % 62 ** 6, 6);
    out = body + tail;
  }
  if (out === real)
    throw new EgressDlpError("E_INTERNAL", "placeholder would equal the credential");
  return out;
}

/** `host` must already be a valid, lower-cased host name (see `validHost`). */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  return (
    pattern.startsWith("*.") && host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  );
}

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The request host, lower-cased without one trailing dot, when it is a plain DNS name or IP
 * literal; undefined for anything else (`#`, `/`, `\\`, `@`, `:`, `%`, spaces, empty labels), so a
 * crafted host can never satisfy a wildcard binding by its suffix.
 */
function validHost(host: string): string | undefined {
  let h = host.toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h.length === 0 || h.length > 253) return undefined;
  if (/^\[[0-9a-f:.]+\]$/.test(h)) return h; // IPv6 literal
  for (const label of h.split(".")) if (!HOST_LABEL.test(label)) return undefined;
  return h;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const MASK = "[CREDENTIAL]";

export function createPlaceholderResolver(
  options: PlaceholderResolverOptions,
): PlaceholderResolver {
  const credentials = options.credentials;
  for (const name of Object.keys(credentials)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new EgressDlpError(
        "E_INVALID_INPUT",
        `credential name ${JSON.stringify(name)} is not an env var name`,
      );
    }
  }
  const key =
    options.key === undefined
      ? randomBytes(32)
      : typeof options.key === "string"
        ? Buffer.from(options.key, "utf8")
        : options.key;
  const shaped = new Map<string, string>(); // placeholder -> name
  const shapedByName = new Map<string, string>();
  for (const [name, value] of Object.entries(credentials)) {
    if (value.length < 8) continue;
    const seed = createHmac("sha256", key).update(`shape:${name}`).digest();
    const ph = shapePlaceholder(value, seed);
    shaped.set(ph, name);
    shapedByName.set(name, ph);
  }
  const shapedPattern =
    shaped.size > 0
      ? new RegExp(
          [...shaped.keys()]
            .sort((a, b) => b.length - a.length)
            .map(escapeRegex)
            .join("|"),
          "g",
        )
      : undefined;

  /**
   * May `name` be sent to `host` on `route`? The host is checked here, not only by the route
   * matcher: it must be a valid host name (no `#`, `/`, `\\`, userinfo, port or spaces), and a
   * `token_ref` binding holds only for a host the route itself covers.
   */
  function bound(name: string, route: Route | undefined, host: string): boolean {
    if (!route) return false;
    const h = validHost(host);
    if (h === undefined) return false;
    if (route.auth?.token_ref === name && hostMatches(route.host, h)) return true;
    return (options.bindings?.[name] ?? []).some((pattern) =>
      hostMatches(pattern.toLowerCase(), h),
    );
  }

  /** A name taken from the request, unless it contains a credential value (then withheld). */
  function safeName(name: string): string {
    for (const value of Object.values(credentials)) {
      if (value.length >= 4 && name.includes(value)) return "[WITHHELD]";
    }
    return name;
  }

  type Fail = Extract<ResolveResult, { ok: false }>;
  class Refused extends Error {
    constructor(readonly fail: Fail) {
      super(fail.reason);
    }
  }

  interface Occurrence {
    start: number;
    end: number;
    name: string;
  }

  /**
   * Every placeholder in `text` (all three forms), found on the original text only, in text order;
   * where two forms overlap the earlier one wins. Values are never searched for placeholders, so
   * a placeholder spelled inside another one's name cannot splice a real value into anything.
   */
  function occurrences(text: string): Occurrence[] {
    const found: Occurrence[] = [];
    const collect = (pattern: RegExp | undefined, nameOf: (m: RegExpExecArray) => string) => {
      if (!pattern) return;
      pattern.lastIndex = 0;
      for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
        if (m[0].length === 0) {
          pattern.lastIndex++;
          continue;
        }
        found.push({ start: m.index, end: m.index + m[0].length, name: nameOf(m) });
      }
    };
    collect(PLACEHOLDER_PATTERN, (m) => m[1] as string);
    collect(ALIAS_PATTERN, (m) => m[1] as string);
    collect(shapedPattern, (m) => shaped.get(m[0]) as string);
    found.sort((a, b) => a.start - b.start || b.end - a.end);
    const out: Occurrence[] = [];
    let covered = 0;
    for (const o of found) {
      if (o.start < covered) continue;
      out.push(o);
      covered = o.end;
    }
    return out;
  }

  function hasPlaceholder(text: string): boolean {
    return occurrences(text).length > 0;
  }

  /** Replaces every placeholder in `text` in one pass over the original; returns [resolved, masked]. */
  function substitute(
    text: string,
    surface: string,
    route: Route | undefined,
    host: string,
    used: ResolvedUse[],
    check: (value: string) => PlaceholderFailure | undefined,
    encode: (value: string) => string = (v) => v,
  ): [string, string] {
    const found = occurrences(text);
    if (found.length === 0) return [text, text];
    let resolved = "";
    let masked = "";
    let at = 0;
    for (const o of found) {
      const value = credentials[o.name];
      if (value === undefined) {
        const name = safeName(o.name);
        throw new Refused({
          ok: false,
          reason: "unknown_placeholder",
          surface,
          name,
          message: `unknown placeholder for ${name} in ${surface}`,
        });
      }
      if (!bound(o.name, route, host)) {
        throw new Refused({
          ok: false,
          reason: "unbound_route",
          surface,
          name: o.name,
          message: `placeholder for ${o.name} in ${surface} is headed to a host or route not bound to that credential`,
        });
      }
      const problem = check(value);
      if (problem) {
        throw new Refused({
          ok: false,
          reason: problem,
          surface,
          name: o.name,
          message: `resolved value of ${o.name} is not allowed in ${surface} (control characters or path syntax)`,
        });
      }
      used.push({ name: o.name, surface });
      const between = text.slice(at, o.start);
      resolved += between + encode(value);
      masked += between + MASK;
      at = o.end;
    }
    return [resolved + text.slice(at), masked + text.slice(at)];
  }

  const ctl = (v: string): PlaceholderFailure | undefined =>
    /[\r\n\0]/.test(v) ? "invalid_value" : undefined;
  const pathCheck = (v: string): PlaceholderFailure | undefined =>
    ctl(v) ?? (/[/\\?#]|\.\./.test(v) ? "invalid_path_value" : undefined);

  function resolve(request: PlaceholderRequest, route: Route | undefined): ResolveResult {
    const used: ResolvedUse[] = [];
    const host = request.host;
    try {
      // host: placeholders never resolve there; any occurrence is refused
      if (hasPlaceholder(host)) {
        return {
          ok: false,
          reason: "unbound_route",
          surface: "host",
          message: "placeholder in the host name",
        };
      }
      const q = request.path.indexOf("?");
      const rawPath = q === -1 ? request.path : request.path.slice(0, q);
      const rawQuery = q === -1 ? undefined : request.path.slice(q + 1);
      const segs = rawPath
        .split("/")
        .map((seg) => substitute(seg, "path", route, host, used, pathCheck, encodeURIComponent));
      let path = segs.map((s) => s[0]).join("/");
      let maskedPath = segs.map((s) => s[1]).join("/");
      if (rawQuery !== undefined) {
        const parts = rawQuery.split("&").map((pair) => {
          const eq = pair.indexOf("=");
          if (eq === -1)
            return substitute(pair, "query", route, host, used, ctl, encodeURIComponent);
          const [v, m] = substitute(
            pair.slice(eq + 1),
            "query",
            route,
            host,
            used,
            ctl,
            encodeURIComponent,
          );
          return [`${pair.slice(0, eq + 1)}${v}`, `${pair.slice(0, eq + 1)}${m}`] as [
            string,
            string,
          ];
        });
        path += `?${parts.map((p) => p[0]).join("&")}`;
        maskedPath += `?${parts.map((p) => p[1]).join("&")}`;
      }
      const headers: PlaceholderRequest["headers"] = {};
      const maskedHeaders: PlaceholderRequest["headers"] = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (value === undefined) continue;
        const values = typeof value === "string" ? [value] : [...value];
        const out: string[] = [];
        const outMasked: string[] = [];
        for (const v of values) {
          const surface = `header:${name.toLowerCase()}`;
          const basicValue = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(v);
          const carries =
            hasPlaceholder(v) ||
            (basicValue !== null &&
              hasPlaceholder(Buffer.from(basicValue[1] as string, "base64").toString("utf8")));
          if (carries && name.toLowerCase() === "host") {
            throw new Refused({
              ok: false,
              reason: "unbound_route",
              surface,
              message: "placeholder in the Host header",
            });
          }
          if (carries && /[\r\n\0]/.test(v)) {
            throw new Refused({
              ok: false,
              reason: "invalid_value",
              surface,
              message: `header ${name.toLowerCase()} carries a placeholder and a CR, LF or NUL`,
            });
          }
          const basic = /^(\s*Basic\s+)([A-Za-z0-9+/=]+)\s*$/i.exec(v);
          if (basic) {
            const decoded = Buffer.from(basic[2] as string, "base64").toString("utf8");
            const [r, m] = substitute(decoded, surface, route, host, used, ctl);
            if (r !== decoded) {
              out.push(`${basic[1]}${Buffer.from(r, "utf8").toString("base64")}`);
              outMasked.push(`${basic[1]}${m}`);
              continue;
            }
          }
          const [r, m] = substitute(v, surface, route, host, used, ctl);
          out.push(r);
          outMasked.push(m);
        }
        headers[name] = typeof value === "string" ? (out[0] as string) : out;
        maskedHeaders[name] = typeof value === "string" ? (outMasked[0] as string) : outMasked;
      }
      let body = request.body;
      let maskedBody = request.body;
      if (body !== undefined) {
        if (route?.body_placeholders) {
          [body, maskedBody] = substitute(body, "body", route, host, used, ctl);
        } else {
          if (hasPlaceholder(body)) {
            return {
              ok: false,
              reason: "body_denied",
              surface: "body",
              message:
                "placeholder in the request body, and the route does not opt in to body placeholders",
            };
          }
        }
      }
      const resolvedRequest: PlaceholderRequest = { ...request, path, headers };
      const scanView: PlaceholderRequest = { ...request, path: maskedPath, headers: maskedHeaders };
      if (body !== undefined) {
        resolvedRequest.body = body;
        scanView.body = maskedBody as string;
      }
      return { ok: true, request: resolvedRequest, scanView, used };
    } catch (error) {
      if (error instanceof Refused) return error.fail;
      throw error;
    }
  }

  return {
    placeholderFor: (name) => `bottlekit:resolve:env:${name}`,
    shapedPlaceholderFor(name) {
      const ph = shapedByName.get(name);
      if (!ph) {
        throw new EgressDlpError(
          "E_INVALID_INPUT",
          `no credential named ${name} (or it is shorter than 8 characters)`,
        );
      }
      return ph;
    },
    agentEnv(shapedNames = []) {
      const env: Record<string, string> = {};
      for (const name of Object.keys(credentials)) {
        env[name] = shapedNames.includes(name)
          ? (shapedByName.get(name) ?? `bottlekit:resolve:env:${name}`)
          : `bottlekit:resolve:env:${name}`;
      }
      return env;
    },
    canaries() {
      const out: KnownSecret[] = [];
      for (const name of Object.keys(credentials)) {
        out.push({ name: `placeholder:${name}`, value: `bottlekit:resolve:env:${name}` });
        out.push({ name: `placeholder:${name}`, value: `openshell:resolve:env:${name}` });
        const s = shapedByName.get(name);
        // shaped placeholders of very short credentials cannot be told apart from text
        if (s && s.replace(/[^A-Za-z0-9]/g, "").length >= 10)
          out.push({ name: `placeholder:${name}`, value: s });
      }
      return out;
    },
    resolve,
  };
}
