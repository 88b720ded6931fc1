import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StageHarness, startStageHarness } from "../../test/stage-harness.ts";
import { LLM_STAGES, runStages } from "./index.ts";
import type { Stage } from "./types.ts";

describe("the pipeline", () => {
  let h: StageHarness;
  beforeAll(async () => {
    h = await startStageHarness();
  });
  afterAll(() => h.close());

  it("is one list of named stages, in the order of the request path", () => {
    expect(LLM_STAGES.map((s) => s.name)).toEqual([
      "identify",
      "parse",
      "route",
      "checkCredential",
      "scanOutbound",
      "upstreamBody",
      "countTokens",
      "reserve",
      "forward",
      "respond",
    ]);
  });

  it("runs sync and async stages in order and stops at the first that answers", async () => {
    const seen: string[] = [];
    const stage =
      (name: string, goOn: boolean, async: boolean): Stage =>
      (call) => {
        seen.push(name);
        if (!goOn) call.res.writeHead(418).end(name);
        return async ? Promise.resolve(goOn) : goOn;
      };
    const r = await h.run(
      [
        stage("a", true, false),
        stage("b", true, true),
        stage("c", false, true),
        stage("d", true, false),
      ],
      { body: {} },
    );
    expect(seen).toEqual(["a", "b", "c"]);
    expect(r.status).toBe(418);
    expect(r.body).toBe("c");
  });

  it("a call that passes every stage is left to the caller (nothing answered)", async () => {
    let answered = true;
    await h.run(
      [
        (call) => {
          answered = call.res.headersSent;
          return true;
        },
      ],
      { body: {} },
    );
    expect(answered).toBe(false);
  });

  it("runStages with no stages resolves", async () => {
    const r = await h.run([], { body: {} });
    expect(r.passed).toBe(true);
    await expect(runStages([], r.call, h.pipeline)).resolves.toBeUndefined();
  });
});
