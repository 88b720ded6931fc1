import { describe, expect, it } from "vitest";
import { BottleError, isBottleError } from "./index.ts";

describe("BottleError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new BottleError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("BottleError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isBottleError(err)).toBe(true);
    expect(isBottleError(new Error("x"))).toBe(false);
  });
});
