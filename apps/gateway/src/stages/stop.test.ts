import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { upstreamBody } from "./body.ts";
import { countTokens } from "./count-tokens.ts";
import { checkCredential } from "./credential.ts";
import { forward } from "./forward.ts";
import { identify } from "./identify.ts";
import { parse } from "./parse.ts";
import { reserve } from "./reserve.ts";
import { route } from "./route.ts";
import { scanOutbound } from "./scan.ts";
import { stopCalls } from "./stop.ts";
import type { Stage } from "./types.ts";

const checks = [
  identify,
  parse,
  route,
  checkCredential,
  scanOutbound,
  upstreamBody,
  countTokens,
  reserve,
];
const body = { model: "gpt-4o-mini", max_tokens: 10, messages: [{ role: "user", content: "x" }] };
const proxied = (bottle: string) => ({ sessionId: "s", bottle, host: "api.openai.com", port: 443 });

describe("stage helper: stop", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("a call of the cut-off bottle stopped before forward: nothing goes upstream, the hold is released, the client gets the reason (429, no retry)", async () => {
    let stopped = -1;
    const cut: Stage = (call, p) => {
      p.live.add(call);
      stopped = stopCalls(
        p,
        "runner",
        'bottle "runner" was cut off by op while this call ran',
      ).stopped;
      p.live.delete(call);
      return true;
    };
    const before = h.up.requests.length;
    const r = await h.run([...checks, cut, forward], { body, proxied: proxied("runner") });
    expect(stopped).toBe(1);
    expect(r.status).toBe(429);
    expect(r.headers["x-should-retry"]).toBe("false");
    expect(JSON.parse(r.body).error).toMatchObject({
      type: "budget_exceeded",
      message: 'bottle "runner" was cut off by op while this call ran',
    });
    expect(h.up.requests.length).toBe(before);
    expect(await h.store.release(r.call.reservationId)).toBe(false);
  });

  it("stops only the bottle's calls (or its children's), and each once", async () => {
    const counts: number[] = [];
    const cut =
      (bottle: string): Stage =>
      (call, p) => {
        p.live.add(call);
        const first = stopCalls(p, bottle, "stop");
        const again = stopCalls(p, bottle, "stop");
        counts.push(first.stopped, again.stopped);
        // the stopped call's response is still listed, to wait for its delivery
        expect(again.responses).toEqual(first.responses);
        p.live.delete(call);
        return true;
      };
    await h.run([...checks, cut("someone-else")], { body, proxied: proxied("runner") });
    expect(counts).toEqual([0, 0]);
    counts.length = 0;
    const child: Stage = (call) => {
      call.identity = { ...call.identity, parents: ["team"] };
      return true;
    };
    const r = await h.run([...checks, child, cut("team")], { body, proxied: proxied("child") });
    expect(counts).toEqual([1, 0]);
    expect(r.call.stopped).toBe("stop");
    await h.store.release(r.call.reservationId);
  });

  it("a call not yet identified is left to its reserve (the store refuses it there)", async () => {
    let n = -1;
    const early: Stage = (call, p) => {
      p.live.add(call);
      n = stopCalls(p, "default", "stop").stopped;
      p.live.delete(call);
      return true;
    };
    await h.run([early], { body });
    expect(n).toBe(0);
  });
});
