import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore, type Store } from "@bottlekit/budget-store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  forOtherSession,
  recordSessionAction,
  restoreForResume,
  takeControlRequest,
  writeControlRequest,
} from "./session-audit.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-session-audit-"));
  store = await openStore(`sqlite:${path.join(dir, "bottlekit.db")}`);
});
afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const actions = async () =>
  (await store.actions({ bottle: "dev" })).map((a) => [a.action, a.by, a.reason]);

describe("operator actions on a session are recorded in the store's audit trail", () => {
  it("a stop is a kill followed by a restore, both naming the session; the bottle stays usable", async () => {
    const r = await recordSessionAction(store, {
      bottle: "dev",
      sessionId: "s-1",
      action: "stop",
      by: "alice",
      reason: "bottle stop (SIGTERM)",
    });
    expect(r).toBe("recorded");
    expect(await actions()).toEqual([
      ["kill", "alice", "session s-1: bottle stop (SIGTERM)"],
      [
        "restore",
        "alice",
        "session s-1: the session was stopped; the bottle itself is not kept cut off",
      ],
    ]);
    expect(await store.cutoffState("dev")).toBeUndefined();
  });

  it("a cutoff is recorded the same way (only the session's routes are dropped)", async () => {
    await recordSessionAction(store, {
      bottle: "dev",
      sessionId: "s-1",
      action: "cutoff",
      by: "alice",
      reason: "bottle stop --cutoff",
    });
    expect((await actions()).map((a) => a[0])).toEqual(["cutoff", "restore"]);
    expect(await store.cutoffState("dev")).toBeUndefined();
  });

  it("a freeze keeps the bottle frozen until the session is resumed (a restore)", async () => {
    await recordSessionAction(store, {
      bottle: "dev",
      sessionId: "s-2",
      action: "freeze",
      by: "bob",
      reason: "bottle freeze",
    });
    expect((await store.cutoffState("dev"))?.policy).toBe("freeze");
    expect(await store.isCutOff("dev")).toBe(true);
    expect(await restoreForResume(store, { bottle: "dev", sessionId: "s-2", by: "bob" })).toBe(
      true,
    );
    expect(await store.cutoffState("dev")).toBeUndefined();
    expect(await actions()).toEqual([
      ["freeze", "bob", "session s-2: bottle freeze"],
      ["restore", "bob", "session s-2: bottle run --resume"],
    ]);
  });

  it("a bottle already cut off keeps its cutoff: a stop is not written over it, a resume does not lift a kill", async () => {
    await store.cutOff("dev", { policy: "kill", by: "budget", reason: "spent" });
    const before = await store.cutoffState("dev");
    expect(
      await recordSessionAction(store, {
        bottle: "dev",
        sessionId: "s-3",
        action: "stop",
        by: "alice",
        reason: "bottle stop (SIGTERM)",
      }),
    ).toBe("already-cut-off");
    expect(await restoreForResume(store, { bottle: "dev", sessionId: "s-3", by: "alice" })).toBe(
      false,
    );
    expect(await store.cutoffState("dev")).toEqual(before);
    expect((await actions()).map((a) => a[0])).toEqual(["kill"]);
  });

  it("a budget freeze is not lifted by a resume while that budget is still spent", async () => {
    await store.defineBudget({
      scope: "bottle",
      key: "dev",
      provider: "openai",
      tokens: 100,
      policy: "freeze",
      source: "operator",
    });
    const r = await store.reserve({
      bottle: "dev",
      agent: "a",
      provider: "openai",
      estimateTokens: 50,
    });
    if (!r.ok) throw new Error(`reserve refused: ${r.reason}`);
    await store.settle(r.id, { inputTokens: 90, outputTokens: 30 });
    const frozen = await store.cutoffState("dev");
    expect(frozen?.policy).toBe("freeze");
    const before = await actions();

    const refused = await restoreForResume(store, { bottle: "dev", sessionId: "s-5", by: "bob" });
    expect(refused).toEqual({
      spent: expect.stringMatching(
        /bottle budget dev for openai is still spent \(120 of 100 tokens\)/,
      ),
    });
    expect(await store.cutoffState("dev")).toEqual(frozen);
    expect(await actions()).toEqual(before);

    // The resumed run brings the same budget: still spent. A larger one: the store decides later.
    const same = [{ provider: "openai", tokens: 100, source: "operator" }];
    const larger = [{ provider: "openai", tokens: 500, source: "flag" }];
    expect(
      await restoreForResume(store, { bottle: "dev", sessionId: "s-5", by: "bob", pending: same }),
    ).toMatchObject({ spent: expect.any(String) });
    expect(await store.cutoffState("dev")).toEqual(frozen);
    expect(
      await restoreForResume(store, {
        bottle: "dev",
        sessionId: "s-5",
        by: "bob",
        pending: larger,
      }),
    ).toBe(true);
    expect(await store.cutoffState("dev")).toBeUndefined();
    await store.cutOff("dev", { policy: "freeze", by: "budget", reason: "spent again" });

    // Raised above what was used: the resume lifts the freeze.
    await store.defineBudget({
      scope: "bottle",
      key: "dev",
      provider: "openai",
      tokens: 1_000,
      policy: "freeze",
      source: "operator",
    });
    expect(await restoreForResume(store, { bottle: "dev", sessionId: "s-5", by: "bob" })).toBe(
      true,
    );
    expect(await store.cutoffState("dev")).toBeUndefined();
  });

  it("a resume of a bottle that is not cut off changes nothing", async () => {
    expect(await restoreForResume(store, { bottle: "dev", sessionId: "s-4", by: "a" })).toBe(true);
    expect(await actions()).toEqual([]);
  });

  it("another session's cutoff is recognised by its reason; bottle-wide reasons are for every session", () => {
    expect(forOtherSession("session s-1: bottle freeze", "s-2")).toBe(true);
    expect(forOtherSession("session s-1: bottle freeze", "s-1")).toBe(false);
    expect(forOtherSession("bottle capped budget spent", "s-1")).toBe(false);
    expect(forOtherSession("dashboard: kill", "s-1")).toBe(false);
  });
});

describe("control requests name the operator for the run's audit", () => {
  it("is taken once, for the action it names, while fresh", () => {
    const now = Date.now();
    fs.mkdirSync(path.join(dir, "state", "runs"), { recursive: true });
    writeControlRequest(dir, "s-1", { action: "freeze", by: "carol", at: now });
    expect(takeControlRequest(dir, "s-1", "freeze", now)?.by).toBe("carol");
    expect(takeControlRequest(dir, "s-1", "freeze", now)).toBeUndefined();
    writeControlRequest(dir, "s-1", { action: "freeze", by: "carol", at: now });
    expect(takeControlRequest(dir, "s-1", "stop", now)).toBeUndefined();
    writeControlRequest(dir, "s-1", { action: "stop", by: "carol", at: now - 60_000 });
    expect(takeControlRequest(dir, "s-1", "stop", now)).toBeUndefined();
    writeControlRequest(dir, "s-1", { action: "stop", by: "not a name!", at: now });
    expect(takeControlRequest(dir, "s-1", "stop", now)).toBeUndefined();
    expect(fs.readdirSync(path.join(dir, "state", "runs"))).toEqual([]);
  });
});
