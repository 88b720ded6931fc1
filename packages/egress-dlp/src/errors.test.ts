import { describe, expect, it } from "vitest";
import { EgressDlpError, isEgressDlpError } from "./index.ts";

describe("EgressDlpError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new EgressDlpError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("EgressDlpError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isEgressDlpError(err)).toBe(true);
    expect(isEgressDlpError(new Error("x"))).toBe(false);
  });
});
