import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { amendmentFile } from "../amend.ts";
import { cacheDirFromEnv } from "../cache-dir.ts";
import { type CheckResult, checkCommand, checkShell, explain } from "../check.ts";
import type { CliIo } from "../cli.ts";
import { renderCodex } from "../codex-format.ts";
import { atLeast, type Decision } from "../decision.ts";
import { formatDiagnostic } from "../diagnostic.ts";
import { ExecPolicyError } from "../errors.ts";
import { loadPolicyFiles } from "../load.ts";

export interface CheckFlags {
  rules: string[];
  /** Undefined: text on a terminal, JSON otherwise. */
  format?: "json" | "text" | "codex";
  /** false with --no-amendments: do not load the project's and the user's amendment files. */
  amendments?: boolean;
  shell?: string;
  stdin?: boolean;
  resolveHostExecutables?: boolean;
  failOn?: "prompt" | "forbidden";
  pretty?: boolean;
  json?: boolean;
  /** false with --no-cache: always parse and validate YAML files. */
  cache?: boolean;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** `execpolicy check`: exit 0 whatever the decision, 3 when --fail-on is reached, 2 on usage or load errors. */
export async function checkCommandAction(
  argv: string[],
  flags: CheckFlags,
  io: CliIo,
): Promise<number> {
  if (flags.rules.length === 0) {
    throw new ExecPolicyError("E_USAGE", "no policy file given", {
      hint: "pass at least one -r FILE (Codex .rules or native .yaml)",
    });
  }
  if (flags.json && flags.format === "codex") {
    throw new ExecPolicyError("E_USAGE", "--json and --format codex contradict each other", {
      hint: "pick one output format",
    });
  }
  const modes = [argv.length > 0, flags.shell !== undefined, flags.stdin === true].filter(
    Boolean,
  ).length;
  if (modes !== 1) {
    throw new ExecPolicyError(
      "E_USAGE",
      modes === 0 ? "nothing to check" : "give only one of: an argv after --, --shell, --stdin",
      {
        hint: "execpolicy check -r FILE -- git status   or   execpolicy check -r FILE --shell 'git status && make'",
      },
    );
  }
  if (flags.format === "codex" && argv.length === 0) {
    throw new ExecPolicyError(
      "E_USAGE",
      "--format codex checks an argv only (Codex does not split scripts)",
      { hint: "drop --format codex to check a script" },
    );
  }
  if (flags.json && flags.format === "text") {
    throw new ExecPolicyError("E_USAGE", "--json and --format text contradict each other", {
      hint: "pick one output format",
    });
  }
  const files = [...flags.rules];
  // --format codex stays exactly what Codex prints for the given files
  if (flags.amendments !== false && flags.format !== "codex")
    files.push(...(await amendmentFiles(io, files)));
  const loaded = await loadPolicyFiles(files, {
    cacheDir: flags.cache === false ? undefined : cacheDirFromEnv(io.env, io.cwd),
  });
  for (const d of [...loaded.errors, ...loaded.warnings])
    io.stderr.write(`${formatDiagnostic(d)}\n`);
  const failedFiles = [...new Set(loaded.errors.map((d) => d.file))];
  if (failedFiles.length > 0) {
    io.stderr.write(
      `execpolicy: ${failedFiles.length} of ${files.length} policy file(s) failed to load: ${failedFiles.join(", ")}\n`,
    );
  }
  const options = {
    resolveHostExecutables: flags.resolveHostExecutables === true,
    cwd: io.cwd ?? process.cwd(),
    home: io.env.HOME,
  };

  if (flags.format === "codex") {
    if (failedFiles.length > 0) return 2;
    const matches = loaded.policy.match(argv, options);
    io.stdout.write(`${renderCodex(matches, flags.pretty === true)}\n`);
    return exitFor(matches.length === 0 ? undefined : decisionOfMatches(matches), flags.failOn);
  }

  let result: CheckResult;
  if (argv.length > 0) result = await checkCommand(loaded.policy, argv, options);
  else {
    const stdin = io.stdin ?? process.stdin;
    if (flags.shell === undefined && (stdin as { isTTY?: boolean }).isTTY) {
      throw new ExecPolicyError(
        "E_USAGE",
        "--stdin expects the script on standard input, not a terminal",
        { hint: "pipe a script in, or use --shell 'SCRIPT'" },
      );
    }
    const script = flags.shell ?? (await readAll(stdin));
    result = await checkShell(loaded.policy, script, options);
  }
  const text =
    flags.format === "text" ||
    (flags.format === undefined &&
      flags.json !== true &&
      flags.pretty !== true &&
      (io.stdout as { isTTY?: boolean }).isTTY === true);
  if (text) {
    io.stdout.write(renderText(result));
    if (failedFiles.length > 0) return 2;
    return exitFor(result.decision, flags.failOn);
  }
  const doc: CheckResult & { loadErrors?: string[] } = { ...result };
  if (loaded.errors.length > 0) doc.loadErrors = loaded.errors.map(formatDiagnostic);
  io.stdout.write(`${flags.pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc)}\n`);
  if (failedFiles.length > 0) return 2;
  return exitFor(result.decision, flags.failOn);
}

function decisionOfMatches(matches: readonly { decision: Decision }[]): Decision {
  return matches.reduce<Decision>((d, m) => (atLeast(m.decision, d) ? m.decision : d), "allow");
}

function exitFor(decision: Decision | undefined, failOn: Decision | undefined): number {
  if (failOn === undefined || decision === undefined) return 0;
  return atLeast(decision, failOn) ? 3 : 0;
}

/**
 * The readable form: one line per command (decision, command, the rule that decided it and its
 * justification, or why no rule did), then the overall decision with its one-line reason.
 */
export function renderText(result: CheckResult): string {
  const lines: string[] = [];
  for (const c of result.commands) {
    const rule =
      c.matchedRules.find((m) => m.decision === c.decision && m.certain !== false) ??
      c.matchedRules[0];
    const why = rule
      ? `${rule.matchedPrefix.join(" ")} (${rule.source})${rule.justification ? ` — ${rule.justification}` : ""}`
      : c.unmatched
        ? "no rule matches (default)"
        : (c.notes?.[0] ?? "");
    const extra = rule && c.notes?.length ? `; ${c.notes[0]}` : "";
    lines.push(`${c.decision.padEnd(9)}  ${c.argv.join(" ")}  ${why}${extra}`);
  }
  for (const n of result.notes) if (!n.startsWith("unmatched")) lines.push(`note       ${n}`);
  lines.push(`decision: ${result.decision} — ${explain(result)}`);
  return `${lines.join("\n")}\n`;
}

/**
 * The amendment files `execpolicy amend` writes, loaded after the -r files when they exist: the
 * project's (`<cwd>/.bottlekit/rules/default.rules`), then the user's
 * (`$BOTTLEKIT_HOME/rules/default.rules`). They add rules; as everywhere, the strictest matching
 * rule wins, so an amendment never loosens a prompt or forbidden rule of the -r files.
 */
async function amendmentFiles(io: CliIo, already: readonly string[]): Promise<string[]> {
  const home = io.env.BOTTLEKIT_HOME ?? (io.env.HOME ? join(io.env.HOME, ".bottlekit") : undefined);
  const candidates = [
    amendmentFile({ scope: "project", projectDir: io.cwd ?? process.cwd() }),
    ...(home ? [amendmentFile({ scope: "user", home })] : []),
  ];
  const seen = new Set(already.map((f) => resolve(io.cwd ?? process.cwd(), f)));
  const out: string[] = [];
  for (const file of candidates) {
    if (seen.has(file)) continue;
    seen.add(file);
    if (
      await stat(file).then(
        (st) => st.isFile(),
        () => false,
      )
    )
      out.push(file);
  }
  return out;
}
