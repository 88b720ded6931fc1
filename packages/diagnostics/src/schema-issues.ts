import { formatKeyPath } from "./location.ts";
import { didYouMean, suggest } from "./suggest.ts";

/**
 * The parts of a schema-validation issue that matter for a message — the structural shape of a
 * zod 4 issue, so this package needs no zod: `code`, `path`, and the code's own fields.
 */
export interface SchemaIssueLike {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  expected?: unknown;
  values?: readonly unknown[];
  keys?: readonly string[];
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  origin?: string;
  format?: string;
}

function show(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string")
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  return String(value);
}

function article(type: string): string {
  if (type === "array") return "a list";
  if (type === "object") return "a mapping";
  if (type === "int") return "a whole number";
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function oneOf(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  return shown.length <= 1
    ? (shown[0] ?? "")
    : `${shown.slice(0, -1).join(", ")} or ${shown.at(-1)}`;
}

/** The value at `path` inside `input` (undefined when the path leaves the data). */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/**
 * One issue in our words: what the value must be, what it was, and a did-you-mean for a
 * misspelled option. `input` is the whole document that was validated (for the "got" part).
 * Custom messages written in a schema (anything not in zod's own wording) are kept.
 */
export function describeSchemaIssue(issue: SchemaIssueLike, input?: unknown): string {
  const got = valueAt(input, issue.path);
  const gotText = got === undefined ? "" : ` (got ${show(got)})`;
  switch (issue.code) {
    case "invalid_type": {
      if (got === undefined) return "is required";
      return `must be ${article(String(issue.expected))}${gotText}`;
    }
    case "invalid_value": {
      const values = issue.values ?? [];
      const near =
        typeof got === "string"
          ? didYouMean(
              suggest(
                got,
                values.filter((v): v is string => typeof v === "string"),
                1,
              ),
            )
          : "";
      return `must be ${values.length === 1 ? "" : "one of "}${oneOf(values)}${gotText}${near ? `; ${near}` : ""}`;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const bound = small ? issue.minimum : issue.maximum;
      if (issue.origin === "array" || issue.origin === "set")
        return `must have ${small ? "at least" : "at most"} ${String(bound)} item(s)${gotText}`;
      if (issue.origin === "string")
        return `must be ${small ? "at least" : "at most"} ${String(bound)} character(s) long${gotText}`;
      const cmp = small
        ? issue.inclusive === false
          ? "greater than"
          : "at least"
        : issue.inclusive === false
          ? "less than"
          : "at most";
      return `must be ${cmp} ${String(bound)}${gotText}`;
    }
    case "unrecognized_keys":
      return `unknown key${(issue.keys?.length ?? 0) > 1 ? "s" : ""} ${(issue.keys ?? []).join(", ")}`;
    case "invalid_format":
      if (/^Invalid /.test(issue.message))
        return `must be a valid ${issue.format ?? "value"}${gotText}`;
      return `${issue.message}${gotText}`;
    default:
      return /^(Invalid input|Invalid)/.test(issue.message)
        ? `is not valid${gotText}`
        : issue.message;
  }
}

/** `key.path: message` for one issue. */
export function formatSchemaIssue(issue: SchemaIssueLike, input?: unknown): string {
  return `${formatKeyPath(issue.path)}: ${describeSchemaIssue(issue, input)}`;
}
