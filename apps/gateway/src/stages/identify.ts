// Stage 1, identity: who is calling decides the budget scope. On the API door it is the gateway
// key (or the loopback default); on the proxy door it is the bottle session the request came
// through, and the provider is the one whose API host the agent addressed.
import type { IncomingMessage } from "node:http";
import { listProviders } from "@bottlekit/provider-registry";
import type { IdentityResult } from "../identity.ts";
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

/** API host name → provider id, from provider-registry's catalog (built once). */
let hostProviders: Map<string, string> | undefined;
export function providerOfHost(host: string): string | undefined {
  if (hostProviders === undefined) {
    hostProviders = new Map();
    for (const p of listProviders()) {
      if (p.baseUrl === undefined) continue;
      try {
        const h = new URL(p.baseUrl).hostname.toLowerCase();
        if (!hostProviders.has(h)) hostProviders.set(h, p.id);
      } catch {
        // a catalog entry without a usable URL has no host to match
      }
    }
  }
  return hostProviders.get(host.toLowerCase());
}

/** The header that carries the agent's (placeholder) key on the proxy door; it is dropped. */
export function agentCredentialHeader(req: IncomingMessage): string | undefined {
  if (req.headers["x-api-key"] !== undefined) return "x-api-key";
  if (req.headers.authorization !== undefined) return "authorization";
  return undefined;
}

/**
 * Synchronous when the identity resolver answers from its cache (every call but the first of a
 * key within its TTL): no promise on the hot path; otherwise the store is asked.
 */
export function identify(call: Call, p: Pipeline): boolean | Promise<boolean> {
  const proxied = call.proxied;
  let who: IdentityResult;
  if (proxied === undefined) {
    const known = p.identity.resolveCached(call.req.headers);
    if (known === undefined)
      return p.identity.resolve(call.req.headers).then((r) => admit(call, r));
    who = known;
  } else {
    call.proxiedProvider = providerOfHost(proxied.host);
    if (call.proxiedProvider === undefined) {
      sendError(
        call.res,
        call.api,
        403,
        "permission_error",
        `${proxied.host} is not the API host of a known provider`,
      );
      return false;
    }
    who = {
      ok: true,
      identity: {
        bottle: proxied.bottle,
        agent: proxied.agent ?? "default",
        parents: [],
        keyId: undefined,
      },
      credentialHeader: agentCredentialHeader(call.req),
      foreignCredential: undefined,
    };
  }
  return admit(call, who);
}

/** The caller's identity on the call, or the refusal answered. */
function admit(call: Call, who: IdentityResult): boolean {
  if (!who.ok) {
    sendError(call.res, call.api, who.status, "authentication_error", who.message);
    return false;
  }
  call.identity = who.identity;
  call.credentialHeader = who.credentialHeader;
  call.foreignCredential = who.foreignCredential;
  return true;
}
