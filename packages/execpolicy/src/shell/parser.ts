/**
 * Bash parsing through tree-sitter-bash (web-tree-sitter). The wasm grammar is loaded lazily on
 * first use, so argv-only checks never pay for it. The syntax tree is copied into plain objects
 * in one cursor walk (linear in the number of nodes) and the wasm tree is freed immediately.
 */
import { createRequire } from "node:module";
import { ExecPolicyError } from "../errors.ts";

export interface SyntaxNode {
  readonly type: string;
  readonly field: string | null;
  readonly named: boolean;
  /** Start and end offsets in UTF-16 code units (JS string indices). */
  readonly start: number;
  readonly end: number;
  readonly missing: boolean;
  readonly children: SyntaxNode[];
}

export interface ParsedScript {
  root: SyntaxNode;
  /** True when tree-sitter reported an ERROR or MISSING node anywhere. */
  hasError: boolean;
  /** True when parsing was cancelled because it exceeded the time budget. */
  timedOut: boolean;
}

interface TsCursor {
  readonly nodeType: string;
  readonly nodeIsNamed: boolean;
  readonly nodeIsMissing: boolean;
  readonly currentFieldName: string | null;
  readonly startIndex: number;
  readonly endIndex: number;
  gotoFirstChild(): boolean;
  gotoNextSibling(): boolean;
  gotoParent(): boolean;
  delete(): void;
}
interface TsTree {
  readonly rootNode: { readonly hasError: boolean; walk(): TsCursor };
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

let parser: TsParser | undefined;
let loading: Promise<TsParser> | undefined;

/** Loads the bash grammar once. Safe to call many times and concurrently. */
export function loadBashParser(): Promise<void> {
  if (parser) return Promise.resolve();
  loading ??= (async () => {
    try {
      const { Parser, Language } = await import("web-tree-sitter");
      await Parser.init();
      const require = createRequire(import.meta.url);
      const language = await Language.load(
        require.resolve("tree-sitter-bash/tree-sitter-bash.wasm"),
      );
      const p = new Parser();
      p.setLanguage(language);
      parser = p as unknown as TsParser;
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
export function parseBash(script: string, budgetMs = 40): ParsedScript {
  if (!parser) {
    throw new ExecPolicyError("E_PARSER", "the bash parser is not loaded yet", {
      hint: "await loadBashParser() (or use the async checkShell) first",
    });
  }
  const deadline = performance.now() + budgetMs;
  let timedOut = false;
  const tree = parser.parse(script, null, {
    progressCallback: () => {
      if (performance.now() > deadline) timedOut = true;
      return timedOut;
    },
  });
  if (!tree) {
    parser.reset();
    return {
      root: {
        type: "program",
        field: null,
        named: true,
        start: 0,
        end: script.length,
        missing: false,
        children: [],
      },
      hasError: true,
      timedOut: true,
    };
  }
  try {
    const cursor = tree.rootNode.walk();
    const root = copy(cursor);
    cursor.delete();
    return { root, hasError: tree.rootNode.hasError, timedOut };
  } finally {
    tree.delete();
  }
}

function copy(c: TsCursor): SyntaxNode {
  // iterative to survive deeply nested input without exhausting the JS stack
  const root: SyntaxNode = node(c);
  const stack: SyntaxNode[] = [root];
  if (!c.gotoFirstChild()) return root;
  for (;;) {
    const n = node(c);
    (stack[stack.length - 1] as SyntaxNode).children.push(n);
    if (c.gotoFirstChild()) {
      stack.push(n);
      continue;
    }
    while (!c.gotoNextSibling()) {
      if (!c.gotoParent() || stack.length <= 1) return root;
      stack.pop();
    }
  }
}

function node(c: TsCursor): SyntaxNode {
  return {
    type: c.nodeType,
    field: c.currentFieldName,
    named: c.nodeIsNamed,
    start: c.startIndex,
    end: c.endIndex,
    missing: c.nodeIsMissing,
    children: [],
  };
}
