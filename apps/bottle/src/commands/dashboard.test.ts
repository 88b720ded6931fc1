import { existsSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "@bottlekit/budget-store";
import { createProxyHost, startControlServer } from "@bottlekit/egress-proxy";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bottle } from "../../test/helpers.ts";
import { meter } from "../dashboard/fixtures.ts";
import { DashboardModel } from "../dashboard/model.ts";
import { connectLiveControl, dashboardLoader, localRuns, storeActions } from "./dashboard.ts";

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
        "no local run signalled: a bottle run reading this store applies it within 1 s; any other session keeps running without egress",
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

describe("the dashboard's keys and local bottle runs", () => {
  it("f tells the bottle's live run to freeze (SIGUSR1, as bottle freeze does), k to stop; other bottles' runs are left alone", async () => {
    const { spawn } = await import("node:child_process");
    const { readFileSync } = await import("node:fs");
    const { writeSession } = await import("../run/sessions.ts");
    const got = join(home.dir, "signals");
    const child = (name: string) =>
      spawn(
        process.execPath,
        [
          "-e",
          `const fs=require("fs");for(const s of ["SIGUSR1","SIGUSR2","SIGTERM"])process.on(s,()=>fs.appendFileSync(${JSON.stringify(got)},"${name}:"+s+"\\n"));setInterval(()=>{},1000);process.stdout.write("ready")`,
        ],
        { stdio: ["ignore", "pipe", "ignore"] },
      );
    const procs = [child("alpha"), child("beta")];
    try {
      await Promise.all(procs.map((p) => new Promise((r) => p.stdout?.once("data", r))));
      procs.forEach((p, i) => {
        writeSession(home.dir, {
          sessionId: `s${i}`,
          bottle: i === 0 ? "alpha" : "beta",
          agent: "dev",
          kind: "command",
          pid: p.pid ?? 0,
          sandboxPid: p.pid ?? 0,
          startedAt: new Date().toISOString(),
          projectDir: home.dir,
          command: ["true"],
          budgets: [],
          cutoff: "cutoff",
          controller: "in-process",
          state: "running",
        });
      });
      const store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`);
      try {
        const runs = await localRuns(home.dir);
        const snap = await dashboardLoader(new DashboardModel(store), undefined, runs)();
        expect(snap.rows.map((r) => [r.bottle, r.state, r.sessions])).toEqual([
          ["alpha", "running", 1],
          ["beta", "running", 1],
        ]);
        const actions = storeActions(store, { USER: "ops" }, undefined, runs);
        expect(await actions.cutOff("alpha", "freeze")).toBe(
          "alpha frozen (freeze) by ops; 1 run told to freeze",
        );
        await actions.restore("alpha");
        expect(await actions.cutOff("alpha", "kill")).toBe(
          "alpha killed (kill) by ops; 1 run told to stop",
        );
        const lines = () => {
          try {
            return readFileSync(got, "utf8").trim().split("\n");
          } catch {
            return [];
          }
        };
        for (let i = 0; i < 200 && lines().length < 2; i++)
          await new Promise((r) => setTimeout(r, 10));
        // Two pending signals may be delivered in either order.
        expect(lines().sort()).toEqual(["alpha:SIGTERM", "alpha:SIGUSR1"]);
        expect((await store.cutoffState("alpha"))?.policy).toBe("kill");
      } finally {
        await store.close();
      }
    } finally {
      for (const p of procs) p.kill("SIGKILL");
    }
  });
});
