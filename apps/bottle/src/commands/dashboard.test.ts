import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import { createProxyHost, startControlServer } from "@bottlekit/egress-proxy";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";
import { meter } from "../dashboard/fixtures.ts";
import { DashboardModel } from "../dashboard/model.ts";
import { connectLiveControl, dashboardLoader, storeActions } from "./dashboard.ts";

let home: TempHome;
beforeEach(async () => {
  home = await createTempHome("bk-dash-");
});
afterEach(() => home.cleanup());

describe("bottle dashboard without a terminal", () => {
  it("refuses with exit 2, points to bottle usage, and opens no store", async () => {
    const r = await bottle(["dashboard"], home.env);
    expect(r.code).toBe(2);
    expect(r.err).toContain("the dashboard needs a terminal");
    expect(r.err).toContain("bottle usage --by bottle --json");
    expect(r.out).toBe("");
    expect(existsSync(join(home.dir, "bottlekit.db"))).toBe(false);
  });

  it("--help lists the keys' commands and the store option", async () => {
    const r = await bottle(["dashboard", "--help"], home.env);
    expect(r.code).toBe(0);
    expect(r.out).toContain("--store <url>");
    expect(r.out).toContain("--poll <ms>");
  });
});

describe("the dashboard's live control (egress proxy control socket)", () => {
  it("lists live sessions as running; c drops their routes and records the cutoff; r lifts both", async () => {
    expect(await connectLiveControl(home.dir)).toBeUndefined();
    const host = createProxyHost({ home: home.dir });
    const server = await startControlServer(host);
    const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`);
    const control = await connectLiveControl(home.dir);
    try {
      expect(control).toBeDefined();
      await host.register({ bottle: "alpha", agent: "dev", routes: [] });
      await meter(store, { bottle: "beta", input: 3, output: 1 });
      const load = dashboardLoader(new DashboardModel(store), control);
      let snap = await load();
      expect(snap.rows.map((r) => [r.bottle, r.state, r.sessions])).toEqual([
        ["alpha", "running", 1],
        ["beta", "active", 0],
      ]);

      const actions = storeActions(store, { USER: "ops" }, control);
      expect(await actions.cutOff("alpha", "cutoff")).toBe(
        "alpha cut off (cutoff) by ops; 1 live session: routes dropped",
      );
      expect((await host.list()).find((s) => s.bottle === "alpha")?.cutoff).toBe(true);
      expect(await store.isCutOff("alpha")).toBe(true);
      snap = await load();
      expect(snap.rows.find((r) => r.bottle === "alpha")?.state).toBe("cut off");

      expect(await actions.restore("alpha")).toBe("alpha restored by ops; 1 live session restored");
      expect((await host.list()).find((s) => s.bottle === "alpha")?.cutoff).toBe(false);
      expect(await store.isCutOff("alpha")).toBe(false);

      expect(await actions.cutOff("alpha", "kill")).toContain(
        "no freeze/kill on the control socket yet: the process keeps running",
      );
      expect((await host.list()).find((s) => s.bottle === "alpha")?.cutoff).toBe(true);
    } finally {
      control?.close();
      await store.close();
      await server.close();
      await host.close();
    }
  });
});
