import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";
import { meter } from "../dashboard/fixtures.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("bk-cutoff-");
});
afterEach(() => home.cleanup());

const env = () => ({ ...home.env, USER: "alice" });

describe("bottle cutoff / restore / actions", () => {
  it("cutoff refuses the bottle's next reservation; restore lifts it; both are audited", async () => {
    const cut = await bottle(["cutoff", "dev", "--reason", "runaway loop", "--json"], env());
    expect(cut.code).toBe(0);
    expect(JSON.parse(cut.out)).toMatchObject({
      cutoff: { bottle: "dev", policy: "cutoff", by: "alice", reason: "runaway loop", scope: null },
      wasCutOff: false,
    });
    const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`);
    try {
      const refused = await store.reserve({
        bottle: "dev",
        agent: "a",
        provider: "openai",
        estimateTokens: 1,
      });
      expect(refused).toMatchObject({ ok: false, reason: "cut-off" });
      await meter(store, { bottle: "other", input: 1, output: 1 });

      const restored = await bottle(["restore", "dev", "--reason", "fixed"], env());
      expect(restored.code).toBe(0);
      expect(restored.out).toContain("dev: restored (was cutoff");
      expect(await store.isCutOff("dev")).toBe(false);
      await meter(store, { bottle: "dev", input: 1, output: 1 });
    } finally {
      await store.close();
    }

    const again = await bottle(["restore", "dev", "--reason", "twice"], env());
    expect(again.code).toBe(1);
    expect(again.err).toContain("dev is not cut off; nothing changed");

    const actions = await bottle(["actions", "--bottle", "dev", "--json"], env());
    expect(actions.code).toBe(0);
    const doc = JSON.parse(actions.out);
    expect(
      doc.actions.map((a: { action: string; by: string; reason: string }) => [
        a.action,
        a.by,
        a.reason,
      ]),
    ).toEqual([
      ["cutoff", "alice", "runaway loop"],
      ["restore", "alice", "fixed"],
    ]);
    const text = await bottle(["actions"], env());
    expect(text.out).toMatch(/at \(UTC\)\s+bottle\s+action\s+scope\s+by\s+reason/);
    expect(text.out).toMatch(/dev\s+restore\s+-\s+alice\s+fixed/);
    const limited = JSON.parse((await bottle(["actions", "--limit", "1", "--json"], env())).out);
    expect(limited).toMatchObject({ truncated: true, actions: [{ action: "restore" }] });
    expect(limited.actions).toHaveLength(1);
    const all = JSON.parse((await bottle(["actions", "--limit", "2", "--json"], env())).out);
    expect(all).toMatchObject({
      truncated: false,
      actions: [{ action: "cutoff" }, { action: "restore" }],
    });
  });

  it("--policy kill is recorded; a second cutoff says it already was", async () => {
    await bottle(["cutoff", "dev", "--reason", "one"], env());
    const r = await bottle(["cutoff", "dev", "--reason", "two", "--policy", "kill"], env());
    expect(r.code).toBe(0);
    expect(r.out).toContain("dev: cut off (kill) by alice: two (it was already cut off)");
  });

  it("a reason is required and must be one line; bad names and flags exit 2", async () => {
    const none = await bottle(["cutoff", "dev"], env());
    expect(none.code).toBe(2);
    expect(none.err).toContain("--reason");
    const multi = await bottle(["cutoff", "dev", "--reason", "a\nb"], env());
    expect(multi.code).toBe(2);
    expect(multi.err).toContain("one printable line");
    const name = await bottle(["restore", "../x", "--reason", "r"], env());
    expect(name.code).toBe(2);
    expect(name.err).toContain("is not a bottle name");
    const policy = await bottle(["cutoff", "dev", "--reason", "r", "--policy", "pause"], env());
    expect(policy.code).toBe(2);
    const limit = await bottle(["actions", "--limit", "0"], env());
    expect(limit.code).toBe(2);
    const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`);
    expect(await store.actions()).toEqual([]);
    await store.close();
  });
});
