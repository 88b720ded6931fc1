import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { ManifestIssue } from "./errors.ts";
import { type ParsedFile, parseManifestText } from "./frontmatter.ts";
import type { AgentFrontmatter, BottleFrontmatter } from "./schema.ts";
import { type ManifestKind, validateFrontmatter } from "./validate.ts";

export interface LoadedFile<T> {
  readonly file: string;
  readonly kind: ManifestKind;
  /** The file name without `.md`. */
  readonly name: string;
  readonly parsed: ParsedFile;
  /** Validated frontmatter; undefined when the file has errors. */
  readonly value: T | undefined;
  /** The markdown body: the agent's system prompt or the bottle's notes. */
  readonly body: string;
  readonly issues: readonly ManifestIssue[];
}

/**
 * Reads and validates manifest files, each at most once per loader (so a diamond of `extends`
 * parses the shared parent once). Never throws on bad content: problems become issues.
 */
export class ManifestLoader {
  /** Number of files actually read from disk (for tests and the bench). */
  reads = 0;
  readonly #cache = new Map<string, LoadedFile<BottleFrontmatter | AgentFrontmatter>>();
  readonly #read: (file: string) => string;

  constructor(read: (file: string) => string = (f) => readFileSync(f, "utf8")) {
    this.#read = read;
  }

  load(file: string, kind: "bottle"): LoadedFile<BottleFrontmatter>;
  load(file: string, kind: "agent"): LoadedFile<AgentFrontmatter>;
  load(file: string, kind: ManifestKind): LoadedFile<BottleFrontmatter | AgentFrontmatter>;
  load(file: string, kind: ManifestKind): LoadedFile<BottleFrontmatter | AgentFrontmatter> {
    const key = `${kind}:${file}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    let text: string;
    const name = basename(file).replace(/\.md$/, "");
    try {
      this.reads++;
      text = this.#read(file);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? "unreadable";
      const issue: ManifestIssue = {
        code: "E_READ",
        severity: "error",
        file,
        line: 1,
        col: 1,
        path: "",
        message: `cannot read the file (${reason})`,
        hint: "check that the file exists and is readable",
      };
      const parsed: ParsedFile = {
        file,
        data: undefined,
        body: "",
        issues: [issue],
        locate: () => ({ line: 1, col: 1 }),
      };
      const loaded = { file, kind, name, parsed, value: undefined, body: "", issues: [issue] };
      this.#cache.set(key, loaded);
      return loaded;
    }
    const parsed = parseManifestText(file, text);
    const { value, issues } = validateFrontmatter(parsed, kind);
    const loaded = { file, kind, name, parsed, value, body: parsed.body, issues };
    this.#cache.set(key, loaded);
    return loaded;
  }
}
