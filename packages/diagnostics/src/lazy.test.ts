import { describe, expect, it } from "vitest";
import { z } from "zod";
import { lazyObject, once } from "./lazy.ts";

describe("once", () => {
  it("builds on the first call only, undefined included", () => {
    let builds = 0;
    const get = once(() => {
      builds++;
      return undefined;
    });
    expect(builds).toBe(0);
    expect(get()).toBeUndefined();
    expect(get()).toBeUndefined();
    expect(builds).toBe(1);
  });
});

describe("lazyObject", () => {
  it("builds nothing until touched, then answers as the built object", () => {
    let builds = 0;
    const schema = lazyObject(() => {
      builds++;
      return z.strictObject({ a: z.number() });
    });
    expect(builds).toBe(0);
    expect(schema.safeParse({ a: 1 }).success).toBe(true);
    expect(schema.safeParse({ a: 1, b: 2 }).success).toBe(false);
    expect(schema instanceof z.ZodObject).toBe(true);
    expect(Object.keys(schema.shape)).toEqual(["a"]);
    expect(builds).toBe(1);
  });

  it("serialises and lists keys like the built value", () => {
    const table = lazyObject(() => ({ type: "object", required: ["a"] }));
    expect(JSON.stringify(table)).toBe('{"type":"object","required":["a"]}');
    expect("required" in table).toBe(true);
    expect(Object.keys(table)).toEqual(["type", "required"]);
  });
});
