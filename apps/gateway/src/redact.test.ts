import { createScanner } from "@bottlekit/egress-dlp";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { redactJsonBody } from "./dlp.ts";

const SECRET = "sk-proj-PLANTEDsecretFORtheREDACTIONproperty0123456789abcdef";
const KNOWN = [{ name: "OPENAI_API_KEY", value: SECRET }];
const scanner = createScanner({
  detectors: ["token_patterns", "known_secrets"],
  knownSecrets: KNOWN,
});
const MARK = /\[REDACTED:[A-Za-z0-9_.-]*\]/g;

/** Characters that need escaping in JSON, mixed with plain text (no letters a token could eat). */
const piece = fc.oneof(
  fc.constantFrom("\\", '"', "\n", "\t", "\u0000", "\u001f", "é", "😀", "\u2028", " ", "/", "."),
  fc.string({ maxLength: 6 }).map((s) => s.replace(/[A-Za-z0-9_+=~-]/g, " ")),
);
const text = fc.array(piece, { maxLength: 8 }).map((a) => a.join(""));
/** A string with the secret planted between non-token characters, or none. */
const planted = fc
  .tuple(text, text, fc.boolean())
  .map(([a, b, plant]) => (plant ? `${a} ${SECRET} ${b}` : `${a}${b}`));

const body = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    planted,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(text, tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Every string of a JSON value (keys included), in order. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      strings(x, out);
    }
  }
  return out;
}

describe("redactJsonBody", () => {
  it("property: the redacted body parses, no secret remains, every other character is unchanged", () => {
    fc.assert(
      fc.property(body, fc.boolean(), (value, asciiEscapes) => {
        let raw = JSON.stringify({ model: "m", messages: [{ role: "user", content: value }] });
        // Clients may also escape every non-ASCII character (\uXXXX), as Python's json does.
        if (asciiEscapes)
          raw = raw.replace(
            /[\u007f-\uffff]/g,
            (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
          );
        const red = redactJsonBody(raw, scanner, KNOWN);
        expect(red).toBeDefined();
        const parsed = JSON.parse(red as string) as unknown;
        expect(red).not.toContain(SECRET);
        const before = strings(JSON.parse(raw));
        const after = strings(parsed);
        expect(after.length).toBe(before.length);
        for (let i = 0; i < before.length; i++) {
          expect((after[i] as string).replace(MARK, "§")).toBe(
            (before[i] as string).replaceAll(SECRET, "§"),
          );
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("keeps a message with \\\\ and \\u escapes around the secret intact (the damage the raw-range redaction did)", () => {
    const raw = `{"model":"m","messages":[{"role":"user","content":"path C:\\\\Users\\\\me \\u00e9t\\u00e9 key ${SECRET} end \\"q\\""}]}`;
    const red = redactJsonBody(raw, scanner, KNOWN) as string;
    const content = (JSON.parse(red) as { messages: { content: string }[] }).messages[0]?.content;
    expect(content).toMatch(/^path C:\\Users\\me été key \[REDACTED:[^\]]+\] end "q"$/);
  });

  it("a known secret after \\\\ is replaced where it is (egress-dlp's finding spans the whole string there)", () => {
    const red = redactJsonBody(
      JSON.stringify({ a: `\\\\ ${SECRET} end` }),
      scanner,
      KNOWN,
    ) as string;
    expect((JSON.parse(red) as { a: string }).a).toBe("\\\\ [REDACTED:OPENAI_API_KEY] end");
  });

  it("without the literal values, a secret found only by scanning is still removed (the whole finding)", () => {
    const red = redactJsonBody(JSON.stringify({ a: `\\\\ ${SECRET} end` }), scanner) as string;
    expect(red).not.toContain(SECRET);
  });

  it("a __proto__ key stays a plain key; non-JSON is refused (undefined)", () => {
    const red = redactJsonBody(`{"__proto__":{"x":"${SECRET}"},"a":1}`, scanner, KNOWN) as string;
    expect(red).not.toContain(SECRET);
    expect(Object.keys(JSON.parse(red) as object)).toEqual(["__proto__", "a"]);
    expect(redactJsonBody(`not json ${SECRET}`, scanner, KNOWN)).toBeUndefined();
  });
});
