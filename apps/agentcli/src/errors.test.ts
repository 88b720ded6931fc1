import { describe, expect, it } from "vitest";
import { AgentCliError, isAgentCliError } from "./index.ts";

describe("AgentCliError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new AgentCliError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("AgentCliError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isAgentCliError(err)).toBe(true);
    expect(isAgentCliError(new Error("x"))).toBe(false);
  });
});
