/**
 * A cutoff recorded by another gateway sharing the store stops this gateway's running calls of
 * the bottle: the stream ends with the gateway's `budget_exceeded` reason, the upstream request
 * is aborted, and the call is in the ledger (charged its reservation: its usage never arrived).
 * The other gateway is a second store opened on the same database, as a second process would.
 */
import { openStore, type Store } from "@bottlekit/budget-store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./helpers.ts";

describe("cutoffs heard from the store", () => {
  let h: Harness;
  let other: Store;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    other = await openStore(`sqlite:${h.home.dir}/bottlekit.db`, {
      home: h.home.dir,
      reclaimOnOpen: false,
    });
    key = (await h.store.createGatewayKey({ bottle: "runner", agent: "coder" })).key;
  });
  afterAll(async () => {
    await other.close();
    await h.close();
  });

  it("another gateway's cutoff stops the bottle's running stream here, with the reason; its next call is refused", async () => {
    const pieces = Array.from({ length: 200 }, (_, i) => `w${i} `);
    h.up.enqueue({ pieces, frameDelayMs: 50, usage: { input: 10, output: 200 } });
    const stream = await h.openai(key).chat.completions.create({
      model: "openai/gpt-4o-mini",
      max_tokens: 300,
      stream: true,
      messages: [{ role: "user", content: "a long answer please" }],
    });
    let text = "";
    let cut: Promise<unknown> | undefined;
    const failure = await (async () => {
      try {
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta?.content ?? "";
          // once the answer is flowing (text arrived, not only the role chunk), another gateway
          // cuts the bottle off
          if (text.length > 0)
            cut ??= other.cutOff("runner", { by: "operator-on-gw2", reason: "incident 42" });
        }
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    await cut;
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain("w199");
    expect(String((failure as Error | undefined)?.message)).toContain(
      'bottle "runner" was cut off by operator-on-gw2',
    );
    const aborted = await h.up.waitForAbort(60_000);
    expect(aborted.aborted).toBe(true);
    await expect
      .poll(async () => (await h.store.events({ bottle: "runner" })).length, { timeout: 60_000 })
      .toBe(1);
    const [ev] = await h.store.events({ bottle: "runner" });
    expect(ev?.usageMissing).toBe(true);
    expect(h.logs.find((l) => l.event === "store.cutoff_heard")).toMatchObject({
      bottle: "runner",
      by: "operator-on-gw2",
      stopped: 1,
    });
    expect(h.logs.some((l) => l.event === "call.stopped")).toBe(true);

    // the next call of the bottle is refused at reserve
    const refused = await h
      .openai(key)
      .chat.completions.create({
        model: "openai/gpt-4o-mini",
        max_tokens: 5,
        messages: [{ role: "user", content: "again" }],
      })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429 });
  });
});
