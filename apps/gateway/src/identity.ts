import type { IncomingHttpHeaders } from "node:http";
import type { Store } from "@bottlekit/budget-store";

/** Who is calling: decides the budget scope. */
export interface CallerIdentity {
  bottle: string;
  agent: string;
  parents: readonly string[];
  /** Gateway key id, when the caller presented one. */
  keyId: string | undefined;
}

export type IdentityResult =
  | {
      ok: true;
      identity: CallerIdentity;
      /** The header that carried the gateway key (skipped by the outbound DLP scan). */
      credentialHeader: string | undefined;
      /** A credential that is not a gateway key: forwarded only to `passthrough_auth` providers. */
      foreignCredential: string | undefined;
    }
  | { ok: false; status: 401; message: string };

export interface IdentityOptions {
  /** True when the listener is bound to a loopback address. */
  loopback: boolean;
  /** How long a verified key (or a miss) is cached, in ms. 0 disables the cache. */
  cacheTtlMs?: number;
  /** How often "are any keys configured?" is re-read from the store, in ms. */
  keysRefreshMs?: number;
  defaultBottle?: string;
  /** A bottle's parent bottles, nearest first (from its manifest's `extends`); default none. */
  parentsOf?: (bottle: string) => readonly string[];
}

const GATEWAY_KEY_PREFIX = "bk_";

function secondCredential(headers: IncomingHttpHeaders, used: string): string | undefined {
  if (used === "authorization") {
    const x = headers["x-api-key"];
    return typeof x === "string" && x.length > 0 ? x.trim() : undefined;
  }
  const a = headers.authorization;
  return typeof a === "string" && a.slice(0, 7).toLowerCase() === "bearer "
    ? a.slice(7).trim()
    : undefined;
}

/** Extracts the presented credential: `Authorization: Bearer <k>` or `x-api-key: <k>`. */
export function presentedCredential(
  headers: IncomingHttpHeaders,
): { header: string; value: string } | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") {
    return { header: "authorization", value: auth.slice(7).trim() };
  }
  const x = headers["x-api-key"];
  if (typeof x === "string" && x.length > 0) return { header: "x-api-key", value: x.trim() };
  return undefined;
}

/**
 * Resolves gateway keys to identities through the store, with a small TTL cache so the hot path
 * does not hash and query on every call (O(1) per request after the first). Fails closed: a key
 * that does not verify is refused, and without a key the caller only runs as the `default`
 * bottle when the listener is on loopback and no gateway key exists at all.
 */
export class IdentityResolver {
  private readonly cache = new Map<string, { at: number; id: CallerIdentity | undefined }>();
  private keysConfigured = false;
  private keysCheckedAt = -Infinity;
  private readonly ttl: number;
  private readonly refresh: number;
  private readonly defaultIdentity: CallerIdentity;

  constructor(
    private readonly store: Store,
    private readonly options: IdentityOptions,
  ) {
    this.ttl = options.cacheTtlMs ?? 5_000;
    this.refresh = options.keysRefreshMs ?? 5_000;
    this.defaultIdentity = {
      bottle: options.defaultBottle ?? "default",
      agent: "default",
      parents: options.parentsOf?.(options.defaultBottle ?? "default") ?? [],
      keyId: undefined,
    };
  }

  /** Whether any unrevoked gateway key exists (re-read at most every `keysRefreshMs`). */
  async hasKeys(now = Date.now()): Promise<boolean> {
    if (now - this.keysCheckedAt >= this.refresh) {
      const keys = await this.store.listGatewayKeys();
      this.keysConfigured = keys.some((k) => k.revokedAt === undefined);
      this.keysCheckedAt = now;
    }
    return this.keysConfigured;
  }

  async resolve(headers: IncomingHttpHeaders): Promise<IdentityResult> {
    const now = Date.now();
    const known = this.resolveCached(headers, now);
    if (known !== undefined) return known;
    const cred = presentedCredential(headers);
    if (cred?.value.startsWith(GATEWAY_KEY_PREFIX)) {
      return this.keyResult(await this.verify(cred.value, now), cred, headers);
    }
    return this.keylessResult(await this.hasKeys(now), cred);
  }

  /**
   * The same answer as `resolve`, when it can be given from what is cached (a gateway key
   * verified within the TTL, or a key-less caller while "are any keys configured?" is fresh);
   * undefined when the store must be asked. Synchronous: the hot path takes no promise for it.
   */
  resolveCached(headers: IncomingHttpHeaders, now = Date.now()): IdentityResult | undefined {
    const cred = presentedCredential(headers);
    if (cred?.value.startsWith(GATEWAY_KEY_PREFIX)) {
      const hit = this.cache.get(cred.value);
      if (hit === undefined || now - hit.at >= this.ttl) return undefined;
      return this.keyResult(hit.id, cred, headers);
    }
    if (now - this.keysCheckedAt >= this.refresh) return undefined;
    return this.keylessResult(this.keysConfigured, cred);
  }

  private keyResult(
    id: CallerIdentity | undefined,
    cred: { header: string; value: string },
    headers: IncomingHttpHeaders,
  ): IdentityResult {
    if (id === undefined) {
      return {
        ok: false,
        status: 401,
        message:
          "the gateway key is unknown or revoked; create one with `bottle-gateway keys create --bottle B --agent A`",
      };
    }
    return {
      ok: true,
      identity: id,
      credentialHeader: cred.header,
      // A second credential next to the gateway key (e.g. `x-api-key` beside `Authorization`)
      // is the one a passthrough_auth provider receives.
      foreignCredential: secondCredential(headers, cred.header),
    };
  }

  private keylessResult(
    keysConfigured: boolean,
    cred: { header: string; value: string } | undefined,
  ): IdentityResult {
    if (keysConfigured || !this.options.loopback) {
      return {
        ok: false,
        status: 401,
        message:
          "a gateway key is required: send it as `Authorization: Bearer bk_…` or `x-api-key: bk_…` (create one with `bottle-gateway keys create --bottle B --agent A`)",
      };
    }
    return {
      ok: true,
      identity: this.defaultIdentity,
      credentialHeader: cred?.header,
      foreignCredential: cred?.value,
    };
  }

  private async verify(key: string, now: number): Promise<CallerIdentity | undefined> {
    const hit = this.cache.get(key);
    if (hit !== undefined && now - hit.at < this.ttl) return hit.id;
    const v = await this.store.verifyGatewayKey(key);
    const id: CallerIdentity | undefined =
      v === undefined
        ? undefined
        : {
            bottle: v.bottle,
            agent: v.agent,
            parents: this.options.parentsOf?.(v.bottle) ?? [],
            keyId: v.id,
          };
    if (this.ttl > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { at: now, id });
    }
    if (id !== undefined) this.keysConfigured = true;
    return id;
  }
}
