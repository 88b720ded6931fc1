import { cacheDirFromEnv } from "../cache-dir.ts";
import { type CheckResult, checkCommand, checkShell } from "../check.ts";
import type { CliIo } from "../cli.ts";
import { renderCodex } from "../codex-format.ts";
import { atLeast, type Decision } from "../decision.ts";
import { formatDiagnostic } from "../diagnostic.ts";
import { ExecPolicyError } from "../errors.ts";
import { loadPolicyFiles } from "../load.ts";

export interface CheckFlags {
  rules: string[];
  format: "json" | "codex";
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
  const loaded = await loadPolicyFiles(flags.rules, {
    cacheDir: flags.cache === false ? undefined : cacheDirFromEnv(io.env, io.cwd),
  });
  for (const d of [...loaded.errors, ...loaded.warnings])
    io.stderr.write(`${formatDiagnostic(d)}\n`);
  const failedFiles = [...new Set(loaded.errors.map((d) => d.file))];
  if (failedFiles.length > 0) {
    io.stderr.write(
      `execpolicy: ${failedFiles.length} of ${flags.rules.length} policy file(s) failed to load: ${failedFiles.join(", ")}\n`,
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
