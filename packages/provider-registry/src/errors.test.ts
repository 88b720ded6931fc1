import { describe, expect, it } from "vitest";
import { isProviderRegistryError, ProviderRegistryError } from "./index.ts";

describe("ProviderRegistryError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new ProviderRegistryError("E_INVALID_INPUT", "bad input", {
      cause,
      hint: "fix it",
    });
    expect(err.name).toBe("ProviderRegistryError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isProviderRegistryError(err)).toBe(true);
    expect(isProviderRegistryError(new Error("x"))).toBe(false);
  });
});
