import { describe, expect, it } from "vitest";
import { BudgetStoreError, isBudgetStoreError } from "./index.ts";

describe("BudgetStoreError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new BudgetStoreError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("BudgetStoreError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isBudgetStoreError(err)).toBe(true);
    expect(isBudgetStoreError(new Error("x"))).toBe(false);
  });
});
