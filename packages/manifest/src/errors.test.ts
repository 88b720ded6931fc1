import { describe, expect, it } from "vitest";
import { isManifestError, ManifestError } from "./index.ts";

describe("ManifestError", () => {
  it("carries a code, a hint and a cause", () => {
    const cause = new Error("root");
    const err = new ManifestError("E_INVALID_INPUT", "bad input", { cause, hint: "fix it" });
    expect(err.name).toBe("ManifestError");
    expect(err.code).toBe("E_INVALID_INPUT");
    expect(err.hint).toBe("fix it");
    expect(err.cause).toBe(cause);
    expect(isManifestError(err)).toBe(true);
    expect(isManifestError(new Error("x"))).toBe(false);
  });
});
