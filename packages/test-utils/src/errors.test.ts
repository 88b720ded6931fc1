import { describe, expect, it } from "vitest";
import { isTestUtilsError, TestUtilsError } from "./index.ts";

describe("TestUtilsError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new TestUtilsError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("TestUtilsError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isTestUtilsError(err)).toBe(true);
    expect(isTestUtilsError(new Error("x"))).toBe(false);
  });
});
