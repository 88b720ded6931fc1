/**
 * Drives `bottle dashboard` in a real terminal (tmux: send-keys, capture-pane) while a real
 * gateway meters calls from two bottles into the same SQLite store. Nothing here asserts elapsed
 * time: each step polls the screen until it shows what the store holds, with a generous limit.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Store } from "@bottlekit/budget-store";
import { type RunningGateway, startGateway } from "@bottlekit/gateway";
import {
  createFakeUpstream,
  createTempHome,
  type FakeUpstream,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const UPSTREAM_KEY = "sk-proj-FAKEupstreamKEYforDASHBOARDtests0123456789abcdef";
const here = dirname(fileURLToPath(import.meta.url));
const appDir = join(here, "..", "..");
const socket = `bk-dash-${process.pid}`;
const session = "dash";

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8", stdio: "pipe" });
}

/** The pane's text (no escapes), or with `-e` its escape sequences too. */
function screen(escapes = false): string {
  return tmux("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", session);
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  limitMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; screen:\n${screen()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Rows of the table: bottle → { state, tokens } as printed. */
function rows(text: string): Map<string, { state: string; tokens: number }> {
  const out = new Map<string, { state: string; tokens: number }>();
  for (const m of text.matchAll(
    /^[> ] (\S+)\s+(active|idle|cut off|frozen|killed)\s+([0-9,]+) /gm,
  )) {
    out.set(m[1] ?? "", { state: m[2] ?? "", tokens: Number((m[3] ?? "").replaceAll(",", "")) });
  }
  return out;
}

let home: TempHome;
let up: FakeUpstream;
let gw: RunningGateway;
let store: Store;
const keys: Record<string, string> = {};
const exitFile = () => join(home.dir, "exit-code");

async function call(bottle: string, input: number, output: number) {
  up.enqueue({ text: "ok", usage: { input, output } });
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${keys[bottle]}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 50,
    }),
  });
  return { status: res.status, body: await res.text() };
}

async function storeTokens(bottle: string): Promise<number> {
  return (await store.usage({ bottle })).totals.tokens;
}

/** Polls until every bottle on screen shows the store's figure (and the store has them all). */
async function screenMatchesStore(bottles: string[]): Promise<void> {
  await until("the screen to match the store", async () => {
    const shown = rows(screen());
    for (const b of bottles) {
      if (shown.get(b)?.tokens !== (await storeTokens(b))) return undefined;
    }
    return true;
  });
}

describe("bottle dashboard in tmux against a live gateway", () => {
  beforeAll(async () => {
    home = await createTempHome("bk-dash-tmux-");
    up = await createFakeUpstream({ requireKey: UPSTREAM_KEY });
    gw = await startGateway({
      config: {
        model_providers: [
          { model: "openai/*", base_url: `${up.url}/v1`, access_key: "$OPENAI_API_KEY" },
        ],
      },
      listen: "127.0.0.1:0",
      store: `sqlite:${join(home.dir, "bottlekit.db")}`,
      env: { BOTTLEKIT_HOME: home.dir, OPENAI_API_KEY: UPSTREAM_KEY },
      identityCacheMs: 0,
    });
    store = gw.store;
    for (const b of ["alpha", "beta"]) {
      keys[b] = (await store.createGatewayKey({ bottle: b, agent: "dev" })).key;
    }
    await store.defineBudget({
      scope: "bottle",
      key: "alpha",
      provider: "openai",
      tokens: 100_000,
    });
    expect((await call("alpha", 120, 30)).status).toBe(200);
    expect((await call("beta", 40, 2)).status).toBe(200);

    // The dashboard runs from source through tsx (the same code the bin bundles), with NO_COLOR.
    const cli = join(appDir, "src", "cli.ts");
    const script = `const { run } = await import(${JSON.stringify(cli)}); process.exitCode = await run(process.argv.slice(1));`;
    const command = [
      "cd",
      shellQuote(appDir),
      "&&",
      "NO_COLOR=1",
      // The temp home: no control socket or runs of this machine's real home are touched.
      `BOTTLEKIT_HOME=${shellQuote(home.dir)}`,
      shellQuote(process.execPath),
      "--conditions=@bottlekit/source",
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      shellQuote(script),
      "dashboard",
      "--poll",
      "200",
      "--store",
      shellQuote(join(home.dir, "bottlekit.db")),
      ";",
      "echo",
      "$?",
      ">",
      shellQuote(exitFile()),
    ].join(" ");
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command);
  });

  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // already gone
    }
    await gw?.close(1_000);
    await up?.close();
    await home?.cleanup();
  });

  it("shows both bottles' metered usage as the store has it, at 80x24 and after a resize, without colour", async () => {
    await screenMatchesStore(["alpha", "beta"]);
    const text = screen();
    for (const line of text.split("\n")) expect([...line].length).toBeLessThanOrEqual(80);
    expect(text).toMatch(/> alpha\s+active\s+150 /);
    // NO_COLOR: no foreground/background colour escapes (inverse for the selection is allowed).
    expect(screen(true)).not.toMatch(
      /\u001b\[(?:[0-9]+;)*(?:3[0-7]|4[0-7]|9[0-7]|38;5;[0-9]+)(?:;[0-9]+)*m/,
    );

    // New calls from both bottles show up on screen with the store's totals.
    expect((await call("alpha", 500, 100)).status).toBe(200);
    expect((await call("beta", 70, 7)).status).toBe(200);
    await screenMatchesStore(["alpha", "beta"]);

    tmux("resize-window", "-t", session, "-x", "120", "-y", "30");
    await until("the wider layout", () => (screen().includes("BURN/15m") ? true : undefined));
    await screenMatchesStore(["alpha", "beta"]);
    tmux("resize-window", "-t", session, "-x", "80", "-y", "24");
    await until("the 80-column layout", () => (screen().includes("BURN/10m") ? true : undefined));
  });

  it("c cuts the selected bottle off: its next call gets 429 cut-off and the screen shows it; r restores", async () => {
    tmux("send-keys", "-t", session, "c");
    await until("the confirmation", () => (screen().includes("Cut off alpha?") ? true : undefined));
    expect(await store.isCutOff("alpha")).toBe(false);
    tmux("send-keys", "-t", session, "y");
    await until("alpha cut off on screen", () =>
      rows(screen()).get("alpha")?.state === "cut off" ? true : undefined,
    );
    const refused = await call("alpha", 10, 1);
    expect(refused.status).toBe(429);
    expect(refused.body).toContain("cut-off");
    expect((await call("beta", 5, 1)).status).toBe(200);
    await screenMatchesStore(["alpha", "beta"]);
    expect(rows(screen()).get("beta")?.state).toBe("active");

    tmux("send-keys", "-t", session, "r");
    await until("alpha restored on screen", () =>
      rows(screen()).get("alpha")?.state === "active" ? true : undefined,
    );
    expect(await store.isCutOff("alpha")).toBe(false);
    expect((await call("alpha", 10, 1)).status).toBe(200);
    await screenMatchesStore(["alpha", "beta"]);
    const trail = (await store.actions({ bottle: "alpha" })).map((a) => a.action);
    expect(trail).toEqual(["cutoff", "restore"]);
  });

  it("q exits 0", async () => {
    tmux("send-keys", "-t", session, "q");
    const code = await until("the dashboard to exit", () =>
      existsSync(exitFile()) ? readFileSync(exitFile(), "utf8").trim() : undefined,
    );
    expect(code).toBe("0");
  });
});

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}
