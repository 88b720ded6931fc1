/**
 * A controller creates the approvals service for every `bottle run`; the queue (a SQLite file) is
 * opened only when the service first files or reads a proposal. A session that files none never
 * opens it, and the first proposal works as before.
 */
import { existsSync, rmSync } from "node:fs";
import { createProxyHost } from "@bottlekit/egress-proxy";
import { afterAll, describe, expect, it } from "vitest";
import { makeHome } from "../test/harness.ts";
import { createApprovals, defaultDbPath } from "./index.ts";

const home = makeHome();
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("the approvals queue", () => {
  it("is not opened by a session that files no proposal, and opens for the first one", async () => {
    const host = createProxyHost({ home });
    const approvals = createApprovals(host, { pollMs: 10 });
    const r = await host.register({ bottle: "work", routes: [] });
    await approvals.sync();
    await new Promise((done) => setTimeout(done, 50)); // a few polls
    await host.unregister(r.sessionId);
    expect(existsSync(defaultDbPath(home))).toBe(false);

    // the queue itself (the operator's view of this controller) opens it
    expect(approvals.store.list({})).toEqual([]);
    expect(existsSync(defaultDbPath(home))).toBe(true);
    await approvals.close();
    await host.close();
  });
});
