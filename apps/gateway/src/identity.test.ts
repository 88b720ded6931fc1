import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@bottlekit/budget-store";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { IdentityResolver } from "./identity.ts";

describe("IdentityResolver.resolveCached (the synchronous hot path)", () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bk-identity-"));
    store = await openStore(`sqlite:${dir}/bottlekit.db`, { home: dir });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a verified key from the cache within its TTL, the same as resolve, without the store", async () => {
    const key = await store.createGatewayKey({ bottle: "b", agent: "a" });
    const ids = new IdentityResolver(store, { loopback: true, cacheTtlMs: 60_000 });
    const headers = { authorization: `Bearer ${key.key}`, "x-api-key": "sk-other" };
    expect(ids.resolveCached(headers)).toBeUndefined();
    const first = await ids.resolve(headers);
    const verify = vi.spyOn(store, "verifyGatewayKey");
    const cached = ids.resolveCached(headers);
    expect(cached).toEqual(first);
    expect(cached).toMatchObject({ ok: true, identity: { bottle: "b", agent: "a" } });
    expect(cached).toMatchObject({
      credentialHeader: "authorization",
      foreignCredential: "sk-other",
    });
    expect(verify).toHaveBeenCalledTimes(0);
    // Past the TTL: the store must be asked again.
    expect(ids.resolveCached(headers, Date.now() + 60_001)).toBeUndefined();
    verify.mockRestore();
    await store.revokeGatewayKey(key.id);
  });

  it("a revoked key's cached miss stays a 401, and a key-less caller is refused once keys exist", async () => {
    const key = await store.createGatewayKey({ bottle: "b", agent: "a" });
    const ids = new IdentityResolver(store, { loopback: true, cacheTtlMs: 60_000 });
    expect(await ids.resolve({ authorization: "Bearer bk_unknown" })).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(ids.resolveCached({ authorization: "Bearer bk_unknown" })).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(await ids.resolve({})).toMatchObject({ ok: false, status: 401 });
    expect(ids.resolveCached({})).toMatchObject({ ok: false, status: 401 });
    await store.revokeGatewayKey(key.id);
  });

  it("without keys on loopback: the default identity, from the cache while the key check is fresh", async () => {
    const ids = new IdentityResolver(store, { loopback: true, keysRefreshMs: 60_000 });
    expect(ids.resolveCached({})).toBeUndefined();
    const first = await ids.resolve({});
    expect(first).toMatchObject({ ok: true, identity: { bottle: "default", agent: "default" } });
    const list = vi.spyOn(store, "listGatewayKeys");
    expect(ids.resolveCached({})).toEqual(first);
    expect(list).toHaveBeenCalledTimes(0);
    expect(ids.resolveCached({}, Date.now() + 60_001)).toBeUndefined();
    list.mockRestore();
    // Not on loopback: never the default identity.
    const remote = new IdentityResolver(store, { loopback: false, keysRefreshMs: 60_000 });
    await remote.resolve({});
    expect(remote.resolveCached({})).toMatchObject({ ok: false, status: 401 });
  });
});
