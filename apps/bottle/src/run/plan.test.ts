import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isBottleError } from "../errors.ts";
import { agentcliUpstream, windowOf } from "./plan.ts";

describe("windowOf (manifest window -> store window)", () => {
  it("maps whole days, weeks and multiples of 24h", () => {
    expect(windowOf({}, "w")).toBe("none");
    expect(windowOf({ window: "24h" }, "w")).toBe("daily");
    expect(windowOf({ window: "48h" }, "w")).toBe("2d");
    expect(windowOf({ window: "7d" }, "w")).toBe("7d");
    expect(windowOf({ window: "2w" }, "w")).toBe("14d");
  });

  it("refuses windows shorter than a day with the key path", () => {
    for (const window of ["30m", "12h", "25h"]) {
      let error: unknown;
      try {
        windowOf({ window }, "budget.anthropic.window");
      } catch (e) {
        error = e;
      }
      expect(isBottleError(error) && error.message).toMatch(/^budget\.anthropic\.window: /);
    }
  });

  it("never throws anything but a BottleError, and whole-day results stay whole days (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[1-9][0-9]{0,3}[mhdw]$/)), (window) => {
        try {
          const w = windowOf({ window }, "w");
          return (
            w === "daily" ||
            w === "none" ||
            w === "weekly" ||
            w === "monthly" ||
            /^[1-9][0-9]*d$/.test(w)
          );
        } catch (e) {
          return isBottleError(e);
        }
      }),
    );
  });
});

describe("agentcliUpstream (the provider host and key a bottled agentcli uses)", () => {
  it("takes the API host and key variable of the model's provider", () => {
    expect(agentcliUpstream("openai/gpt-4o-mini")).toEqual({
      host: "api.openai.com",
      keyEnv: "OPENAI_API_KEY",
    });
    expect(agentcliUpstream("anthropic/claude-sonnet-4-5")).toEqual({
      host: "api.anthropic.com",
      keyEnv: "ANTHROPIC_API_KEY",
    });
    expect(agentcliUpstream("no-slash")).toBeUndefined();
    expect(agentcliUpstream("nosuchprovider/m")).toBeUndefined();
  });
});
