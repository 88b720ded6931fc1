import { describe, expect, it } from "vitest";
import { ExecPolicyError, isExecPolicyError } from "./index.ts";

describe("ExecPolicyError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new ExecPolicyError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("ExecPolicyError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isExecPolicyError(err)).toBe(true);
    expect(isExecPolicyError(new Error("x"))).toBe(false);
  });
});
