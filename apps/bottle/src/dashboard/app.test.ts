import { join } from "node:path";
import { openStore, type Store } from "@bottlekit/budget-store";
import { createTempHome, type TempHome } from "@bottlekit/test-utils";
import { render } from "ink-testing-library";
import { createElement } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { storeActions } from "../commands/dashboard.ts";
import { columns, Dashboard } from "./app.ts";
import { meter } from "./fixtures.ts";
import { DashboardModel } from "./model.ts";

let home: TempHome;
let store: Store;
beforeEach(async () => {
  home = await createTempHome("bk-app-");
  store = await openStore(`sqlite:${join(home.dir, "bottlekit.db")}`);
  await store.defineBudget({ scope: "bottle", key: "alpha", provider: "openai", tokens: 1_000 });
  await meter(store, { bottle: "alpha", input: 200, output: 50, costUsd: 0.5 });
  await meter(store, { bottle: "beta", agent: "ops", provider: "anthropic", input: 30, output: 3 });
});
afterEach(async () => {
  await store.close();
  await home.cleanup();
});

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const see = (frame: () => string, text: string) =>
  until(() => frame().includes(text), JSON.stringify(text));

function mount(onExit: (code: number) => void = () => undefined) {
  const model = new DashboardModel(store);
  const app = render(
    createElement(Dashboard, {
      load: () => model.refresh(),
      actions: storeActions(store, { USER: "tester" }),
      storeLabel: "test.db",
      color: false,
      pollMs: 50,
      liveControl: false,
      onExit,
    }),
  );
  const frame = () => app.lastFrame() ?? "";
  return { app, frame };
}

const press = async (app: ReturnType<typeof render>, keys: string) => {
  app.stdin.write(keys);
  await new Promise((r) => setTimeout(r, 30));
};

describe("Dashboard", () => {
  it("lists bottles with tokens, budget bar, cost and state; the selected bottle's detail line", async () => {
    const { app, frame } = mount();
    await until(() => frame().includes("beta"), "the table");
    const lines = frame().split("\n");
    expect(lines[0]).toContain("bottle dashboard · 2 bottles · test.db");
    expect(lines[1]).toMatch(/BOTTLE\s+STATE\s+TOKENS\s+BUDGET\s+BURN\/\d+m\s+COST\s+ETA\s+LAST/);
    expect(frame()).toMatch(/> alpha\s+active\s+250 █+░+ 25%/);
    expect(frame()).toMatch(/ {2}beta\s+active\s+33 -/);
    expect(frame()).toContain("alpha: 250 tokens, 1 calls");
    expect(frame()).toContain("bottle alpha openai 250/1,000 (cutoff)");
    expect(frame()).toContain("$0.50");
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(100);
    app.unmount();
  });

  it("c asks first, y cuts off (store and screen), r restores; other keys cancel", async () => {
    const { app, frame } = mount();
    await until(() => frame().includes("> alpha"), "the table");
    await press(app, "c");
    await see(frame, "Cut off alpha? y to confirm");
    await press(app, "n");
    await see(frame, "cancelled");
    expect(await store.isCutOff("alpha")).toBe(false);

    await press(app, "c");
    await press(app, "y");
    await until(() => /> alpha\s+cut off/.test(frame()), "alpha cut off on screen");
    expect(await store.cutoffState("alpha")).toMatchObject({ policy: "cutoff", by: "tester" });
    await see(frame, "alpha cut off (cutoff) by tester");

    await press(app, "r");
    await until(() => /> alpha\s+active/.test(frame()), "alpha restored on screen");
    expect(await store.isCutOff("alpha")).toBe(false);
    expect((await store.actions({ bottle: "alpha" })).map((a) => a.action)).toEqual([
      "cutoff",
      "restore",
    ]);
    app.unmount();
  });

  it("f and k record freeze and kill and say the live session is not signalled", async () => {
    const { app, frame } = mount();
    await until(() => frame().includes("beta"), "the table");
    await press(app, "\u001b[B");
    await see(frame, "> beta");
    await press(app, "k");
    await see(frame, "Kill beta? y to confirm");
    await press(app, "y");
    await until(() => /> beta\s+killed/.test(frame()), "beta killed");
    await see(frame, "no control socket");
    expect((await store.cutoffState("beta"))?.policy).toBe("kill");
    await press(app, "r");
    await press(app, "\u001b[A");
    await press(app, "f");
    await press(app, "y");
    await until(() => /> alpha\s+frozen/.test(frame()), "alpha frozen");
    app.unmount();
  });

  it("/ filters by name, agent or provider; Esc clears", async () => {
    const { app, frame } = mount();
    await until(() => frame().includes("beta"), "the table");
    await press(app, "/");
    await press(app, "anthro");
    await see(frame, "filter: anthro");
    await press(app, "\r");
    await see(frame, "1/2 bottles");
    expect(frame()).not.toMatch(/alpha\s+active/);
    await press(app, "/");
    await press(app, "zzz");
    await press(app, "\r");
    await see(frame, 'no bottle matches "zzz"');
    await press(app, "\u001b");
    await until(() => frame().includes("2 bottles ·"), "filter cleared");
    app.unmount();
  });

  it("? shows help, a the approvals note, q exits 0 and Ctrl-C 130 (several keys in one chunk too)", async () => {
    const codes: number[] = [];
    const { app, frame } = mount((c) => codes.push(c));
    await until(() => frame().includes("beta"), "the table");
    await press(app, "?");
    await see(frame, "c          cut off the selected bottle");
    await see(frame, "no control socket reachable");
    await press(app, "x");
    await press(app, "a");
    await see(frame, "no approvals queue yet");
    await press(app, "xq");
    await until(() => codes.length === 1, "q to exit");
    expect(codes).toEqual([0]);
    const second = mount((c) => codes.push(c));
    await until(() => second.frame().includes("beta"), "the table");
    await press(second.app, "\u0003");
    await until(() => codes.length === 2, "Ctrl-C to exit");
    expect(codes).toEqual([0, 130]);
  });

  it("follows a resize: columns grow with the terminal and 80 columns still fit", async () => {
    const { app, frame } = mount();
    await until(() => frame().includes("beta"), "the table");
    let width = 80;
    Object.defineProperty(app.stdout, "columns", { get: () => width, configurable: true });
    app.stdout.emit("resize");
    await until(
      () =>
        frame()
          .split("\n")
          .every((l) => [...l].length <= 80) && frame().includes("BURN/10m"),
      "80 columns",
    );
    width = 140;
    app.stdout.emit("resize");
    await until(() => frame().includes("BURN/15m"), "140 columns");
    app.unmount();
  });

  it("column widths fill the terminal exactly from 80 columns up", () => {
    for (const w of [80, 81, 100, 120, 200]) {
      const c = columns(w);
      const total = 2 + 7 + Object.values(c).reduce((a, b) => a + b, 0);
      expect(total).toBeLessThanOrEqual(w);
      if (w <= 120) expect(total).toBe(w);
    }
  });
});
