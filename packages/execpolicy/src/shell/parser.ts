/**
 * Bash parsing through tree-sitter-bash (web-tree-sitter). The wasm grammar is loaded lazily on
 * first use, so argv-only checks never pay for it. The syntax tree is copied into plain objects
 * in one cursor walk (linear in the number of nodes) and the wasm tree is freed immediately.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ExecPolicyError } from "../errors.ts";

/**
 * A named node of the tree (anonymous tokens such as `&&` or `>` are not copied; their text is
 * recovered from the source when needed).
 */
export interface SyntaxNode {
  readonly type: string;
  /** Start and end offsets in UTF-16 code units (JS string indices). */
  readonly start: number;
  readonly end: number;
  readonly children: SyntaxNode[];
}

export interface ParsedScript {
  root: SyntaxNode;
  /** True when tree-sitter reported an ERROR or MISSING node anywhere. */
  hasError: boolean;
  /** True when parsing was cancelled because it exceeded the time budget. */
  timedOut: boolean;
  /** Depth of the deepest named node (the root is 0). */
  depth: number;
}

interface TsNode {
  readonly typeId: number;
  readonly startIndex: number;
  readonly endIndex: number;
  readonly namedChildren: (TsNode | null)[];
  readonly hasError: boolean;
}
interface TsTree {
  readonly rootNode: TsNode;
  delete(): void;
}
interface TsParser {
  parse(
    input: string,
    oldTree?: null,
    options?: { progressCallback?: (state: { currentOffset: number }) => boolean | undefined },
  ): TsTree | null;
  reset(): void;
}

interface TsLanguage {
  readonly types: string[];
}

let parser: TsParser | undefined;
/** Type names by id, read once so the tree copy needs few wasm calls per node. */
let typeNames: string[] = [];
let loading: Promise<TsParser> | undefined;

/** Loads the bash grammar once. Safe to call many times and concurrently. */
export function loadBashParser(): Promise<void> {
  if (parser) return Promise.resolve();
  loading ??= (async () => {
    try {
      const { Parser, Language } = await import("web-tree-sitter");
      // Both wasm files are read here, synchronously: no lookup relative to web-tree-sitter's own
      // file (the CLI bundles it elsewhere) and no round trip through the thread pool.
      const require = createRequire(import.meta.url);
      await Parser.init({
        wasmBinary: readFileSync(require.resolve("web-tree-sitter/tree-sitter.wasm")),
      });
      const language = await Language.load(
        readFileSync(require.resolve("tree-sitter-bash/tree-sitter-bash.wasm")),
      );
      const p = new Parser();
      p.setLanguage(language);
      const lang = language as unknown as TsLanguage;
      typeNames = lang.types.map((t) => t ?? "");
      parser = p as unknown as TsParser;
      // pay the first-parse cost (wasm warm-up) at load time rather than inside a budgeted parse
      parser.parse("warm-up && x=$(y) | z > f <<< w", null)?.delete();
      return parser;
    } catch (cause) {
      loading = undefined;
      throw new ExecPolicyError("E_PARSER", "could not load the bash parser (tree-sitter-bash)", {
        cause,
        hint: "reinstall @bottlekit/execpolicy; web-tree-sitter and tree-sitter-bash must be installed",
      });
    }
  })();
  return loading.then(() => undefined);
}

export function isBashParserLoaded(): boolean {
  return parser !== undefined;
}

/**
 * Parses `script`. Requires `loadBashParser()` to have resolved. Parsing is cancelled after
 * `budgetMs` (the caller treats that as unparseable and fails closed).
 */
/** Below this length a parse is too small to need a time budget (and its syscalls). */
const UNBUDGETED_LENGTH = 1024;

export function parseBash(script: string, budgetMs = 40): ParsedScript {
  if (!parser) {
    throw new ExecPolicyError("E_PARSER", "the bash parser is not loaded yet", {
      hint: "await loadBashParser() (or use the async checkShell) first",
    });
  }
  let timedOut = false;
  let tree: TsTree | null;
  if (script.length < UNBUDGETED_LENGTH && budgetMs >= 1) {
    // short scripts parse in microseconds: no budget checks (and no syscalls) needed
    tree = parser.parse(script, null);
  } else {
    // The budget is CPU time of this process, not wall time: a busy machine (other processes)
    // must not turn a normal script into "unparseable".
    const start = process.cpuUsage();
    const budgetUs = budgetMs * 1000;
    tree = parser.parse(script, null, {
      progressCallback: () => {
        const used = process.cpuUsage(start);
        if (used.user + used.system > budgetUs) timedOut = true;
        return timedOut;
      },
    });
  }
  if (!tree) {
    parser.reset();
    return {
      root: {
        type: "program",
        start: 0,
        end: script.length,
        children: [],
      },
      hasError: true,
      timedOut: true,
      depth: 0,
    };
  }
  try {
    const { root, depth } = copy(tree.rootNode);
    return { root, hasError: tree.rootNode.hasError, timedOut, depth };
  } finally {
    tree.delete();
  }
}

/** Node types that never have named children: skipping the wasm call for them saves ~1/3 of the copy. */
const LEAVES = new Set([
  "word",
  "number",
  "variable_name",
  "string_content",
  "raw_string",
  "ansi_c_string",
  "file_descriptor",
  "heredoc_start",
  "heredoc_end",
  "heredoc_content",
  "special_variable_name",
  "test_operator",
  "comment",
  "regex",
  "extglob_pattern",
]);

/**
 * Copies named nodes only: `namedChildren` fetches all children of a node in one wasm call, which
 * is several times cheaper than stepping a TreeCursor. Iterative, so deep nesting cannot overflow
 * the JS stack. Linear in the number of nodes.
 */
function copy(rootNode: TsNode): { root: SyntaxNode; depth: number } {
  const make = (n: TsNode): SyntaxNode => ({
    type: n.typeId === 65535 ? "ERROR" : (typeNames[n.typeId] ?? "ERROR"),
    start: n.startIndex,
    end: n.endIndex,
    children: [],
  });
  const root = make(rootNode);
  let depth = 0;
  const stack: [TsNode, SyntaxNode, number][] = [[rootNode, root, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [ts, out, d] = top;
    if (d > depth) depth = d;
    if (LEAVES.has(out.type)) continue;
    for (const child of ts.namedChildren) {
      if (child === null) continue;
      const copyOfChild = make(child);
      out.children.push(copyOfChild);
      stack.push([child, copyOfChild, d + 1]);
    }
  }
  return { root, depth };
}
