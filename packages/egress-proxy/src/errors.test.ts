import { CodedError, isCodedError } from "@bottlekit/diagnostics";
import { describe, expect, it } from "vitest";
import { EgressProxyError, isEgressProxyError } from "./index.ts";

describe("EgressProxyError", () => {
  it("is a CodedError with a code and a hint", () => {
    const e = new EgressProxyError("E_CA", "bad key", { hint: "chmod 600" });
    expect(e).toBeInstanceOf(CodedError);
    expect(isCodedError(e)).toBe(true);
    expect(isEgressProxyError(e)).toBe(true);
    expect(e).toMatchObject({
      name: "EgressProxyError",
      code: "E_CA",
      hint: "chmod 600",
      message: "bad key",
    });
    expect(isEgressProxyError(new Error("x"))).toBe(false);
  });
});
