import { describe, expect, it } from "vitest";
import { captureIo } from "./index.ts";

describe("captureIo", () => {
  it("keeps stdout and stderr apart and passes exactly the given env", () => {
    const c = captureIo({ NO_COLOR: "1" });
    c.io.stdout.write("data\n");
    c.io.stderr.write("log\n");
    c.io.stdout.write(Buffer.from("more"));
    expect(c.out()).toBe("data\nmore");
    expect(c.err()).toBe("log\n");
    expect(c.io.env).toEqual({ NO_COLOR: "1" });
  });

  it("feeds the given stdin", async () => {
    const c = captureIo({}, { stdin: "line 1\nline 2" });
    let text = "";
    for await (const chunk of c.io.stdin) text += String(chunk);
    expect(text).toBe("line 1\nline 2");
  });
});
