import { describe, expect, it } from "vitest";
import { isLocalAgentWarningError, LocalAgentWarningError } from "./index.ts";

describe("LocalAgentWarningError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new LocalAgentWarningError("E_INVALID_INPUT", "bad input", {
      cause,
      hint: "fix it",
    });
    expect(err.name).toBe("LocalAgentWarningError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isLocalAgentWarningError(err)).toBe(true);
    expect(isLocalAgentWarningError(new Error("x"))).toBe(false);
  });
});
