import { readFileSync, writeFileSync } from "node:fs";
import { validateManifestText } from "@bottlekit/manifest";
import { type Document, isMap, isScalar, isSeq, parseDocument, stringify } from "yaml";
import { routeKey } from "./change.ts";
import { ApprovalsError } from "./errors.ts";
import type { Change } from "./types.ts";

/**
 * `--persist`: the change written into the bottle's own manifest file with the `yaml` Document
 * API, so comments, order and formatting of everything else stay as they were. The new text is
 * validated as a bottle manifest before anything is written.
 */

const FRONTMATTER = /^(---[ \t]*\r?\n)([\s\S]*?\r?\n)?(---[ \t]*(?:\r?\n|$))/;

/** The manifest text with the change applied (nothing written). */
export function persistedText(file: string, text: string, change: Change): string {
  const m = FRONTMATTER.exec(text);
  if (!m) {
    throw new ApprovalsError("E_INVALID_INPUT", `${file}:1:1: no \`---\` frontmatter block`, {
      hint: "the bottle manifest must start with its YAML frontmatter",
    });
  }
  const yamlText = m[2] ?? "";
  const doc = parseDocument(yamlText);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e?.linePos?.[0];
    throw new ApprovalsError(
      "E_INVALID_INPUT",
      `${file}:${(pos?.line ?? 0) + 1}:${pos?.col ?? 1}: ${e?.message.split("\n")[0]}`,
      { hint: "fix the manifest's YAML first" },
    );
  }
  const edited = editYaml(file, yamlText, doc, change);
  const out = text.slice(0, m.index) + m[1] + edited + m[3] + text.slice(m.index + m[0].length);
  const check = validateManifestText(out, "bottle", file);
  if (check.errors.length > 0) {
    throw new ApprovalsError(
      "E_INVALID_INPUT",
      `${file}: the change would not validate: ${check.errors.join("; ")}`,
      {
        hint: "nothing was written",
      },
    );
  }
  return out;
}

const lineStart = (t: string, i: number) => t.lastIndexOf("\n", i - 1) + 1;
const lineEnd = (t: string, i: number) => {
  const n = t.indexOf("\n", i);
  return n === -1 ? t.length : n + 1;
};
const indent = (block: string, col: number) =>
  block
    .split("\n")
    .map((l) => (l.length > 0 ? " ".repeat(col) + l : l))
    .join("\n");

/**
 * Applies the change as a splice of the original YAML text where the structure allows (a block
 * list of routes, an existing budget scalar): every other byte stays as written. Elsewhere the
 * edited Document is printed (comments kept, some spacing normalised).
 */
function editYaml(file: string, text: string, doc: Document, change: Change): string {
  if (change.kind === "route") {
    const routes = doc.getIn(["egress", "routes"]);
    const key = routeKey(change.route);
    const items = isSeq(routes) ? routes.items : [];
    const index = items.findIndex((item) => {
      if (!isMap(item)) return false;
      const host = item.get("host");
      const port = item.get("port");
      return (
        typeof host === "string" &&
        routeKey({ host, port: typeof port === "number" ? port : undefined }) === key
      );
    });
    const block = isSeq(routes) && !routes.flow && items.length > 0;
    const itemRange = (i: number) => {
      const node = items[i] as { range?: [number, number, number] };
      const [from, valueEnd] = node.range ?? [0, 0, 0];
      const dash = text.lastIndexOf("-", from);
      return {
        dash,
        col: dash - lineStart(text, dash),
        end: lineEnd(text, Math.max(valueEnd - 1, from)),
      };
    };
    if (change.op === "remove") {
      if (index === -1) {
        throw new ApprovalsError(
          "E_UNSUPPORTED",
          `${file}: no route for ${key} among the bottle's own routes (it is inherited)`,
          { hint: "remove it from the parent bottle, or set egress.inherit_routes: false" },
        );
      }
      if (block) {
        const r = itemRange(index);
        return text.slice(0, lineStart(text, r.dash)) + text.slice(r.end);
      }
      doc.deleteIn(["egress", "routes", index]);
    } else if (block) {
      const first = itemRange(0);
      const item = indent(stringify([change.route]), first.col);
      if (index !== -1) {
        const r = itemRange(index);
        return text.slice(0, lineStart(text, r.dash)) + item + text.slice(r.end);
      }
      const last = itemRange(items.length - 1);
      return (
        text.slice(0, last.end) +
        (text.slice(0, last.end).endsWith("\n") ? "" : "\n") +
        item +
        text.slice(last.end)
      );
    } else if (index !== -1) {
      doc.setIn(["egress", "routes", index], doc.createNode(change.route));
    } else if (isSeq(routes)) {
      routes.add(doc.createNode(change.route));
    } else {
      doc.setIn(["egress", "routes"], doc.createNode([change.route]));
    }
    return doc.toString({ flowCollectionPadding: false });
  }
  if (change.kind === "budget") {
    const tokens = doc.getIn(["budget", change.provider, "tokens"], true);
    if (isScalar(tokens) && tokens.range) {
      return text.slice(0, tokens.range[0]) + String(change.tokens) + text.slice(tokens.range[1]);
    }
    doc.setIn(["budget", change.provider, "tokens"], change.tokens);
    return doc.toString({ flowCollectionPadding: false });
  }
  throw new ApprovalsError(
    "E_UNSUPPORTED",
    change.kind === "provider"
      ? "a provider attachment holds for a session; it has no manifest form"
      : "a released DLP hold is one request; it has no manifest form",
    { hint: "approve it with --session or --for" },
  );
}

/** Writes the change into `file`; returns the unified diff shown to the operator. */
export function persistChange(file: string, change: Change): { file: string; diff: string } {
  const before = readFileSync(file, "utf8");
  const after = persistedText(file, before, change);
  writeFileSync(file, after);
  return { file, diff: unifiedDiff(file, before, after) };
}

/**
 * A unified diff (3 lines of context) of two texts. Myers' O((N+M)·D) walk: linear for the small
 * edits a proposal makes to a manifest.
 */
export function unifiedDiff(file: string, a: string, b: string): string {
  if (a === b) return "";
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const max = n + m;
  const v = new Map<number, number>([[1, 0]]);
  const trace: Map<number, number>[] = [];
  outer: for (let d = 0; d <= max; d++) {
    trace.push(new Map(v));
    for (let k = -d; k <= d; k += 2) {
      let i =
        k === -d || (k !== d && (v.get(k - 1) ?? -1) < (v.get(k + 1) ?? -1))
          ? (v.get(k + 1) ?? 0)
          : (v.get(k - 1) ?? 0) + 1;
      let j = i - k;
      while (i < n && j < m && x[i] === y[j]) {
        i++;
        j++;
      }
      v.set(k, i);
      if (i >= n && j >= m) break outer;
    }
  }
  // backtrack into a list of ops
  const ops: { t: " " | "-" | "+"; line: string }[] = [];
  let i = n;
  let j = m;
  for (let d = trace.length - 1; d >= 0 && (i > 0 || j > 0); d--) {
    const vd = trace[d] as Map<number, number>;
    const k = i - j;
    const prevK =
      k === -d || (k !== d && (vd.get(k - 1) ?? -1) < (vd.get(k + 1) ?? -1)) ? k + 1 : k - 1;
    const prevI = vd.get(prevK) ?? 0;
    const prevJ = prevI - prevK;
    while (i > prevI && j > prevJ) {
      ops.push({ t: " ", line: x[i - 1] as string });
      i--;
      j--;
    }
    if (d > 0) {
      if (i === prevI) ops.push({ t: "+", line: y[j - 1] as string });
      else ops.push({ t: "-", line: x[i - 1] as string });
      i = prevI;
      j = prevJ;
    }
  }
  ops.reverse();
  // hunks with 3 lines of context
  const out = [`--- ${file}`, `+++ ${file}`];
  let idx = 0;
  let ai = 1;
  let bi = 1;
  const pos: { a: number; b: number }[] = [];
  for (const op of ops) {
    pos.push({ a: ai, b: bi });
    if (op.t !== "+") ai++;
    if (op.t !== "-") bi++;
  }
  while (idx < ops.length) {
    while (idx < ops.length && ops[idx]?.t === " ") idx++;
    if (idx >= ops.length) break;
    const start = Math.max(0, idx - 3);
    let end = idx;
    let quiet = 0;
    while (end < ops.length && quiet < 7) {
      if (ops[end]?.t === " ") quiet++;
      else quiet = 0;
      end++;
    }
    end = Math.min(ops.length, end - Math.max(0, quiet - 3));
    const slice = ops.slice(start, end);
    const p = pos[start] as { a: number; b: number };
    const aLen = slice.filter((o) => o.t !== "+").length;
    const bLen = slice.filter((o) => o.t !== "-").length;
    out.push(`@@ -${p.a},${aLen} +${p.b},${bLen} @@`);
    for (const o of slice) out.push(`${o.t}${o.line}`);
    idx = end;
  }
  return `${out.join("\n")}\n`;
}
