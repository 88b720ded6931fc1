import { describe, expect, it } from "vitest";
import { GatewayError, isGatewayError } from "./index.ts";

describe("GatewayError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new GatewayError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("GatewayError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isGatewayError(err)).toBe(true);
    expect(isGatewayError(new Error("x"))).toBe(false);
  });
});
