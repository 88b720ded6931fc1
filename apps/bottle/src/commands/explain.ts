import { explainAgent, renderExplanation } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, locations, writeJson } from "../context.ts";
import { printWarnings } from "./issues.ts";

export interface ExplainOptions extends LocationFlags {
  json?: boolean;
}

/** `bottle explain <agent>`: extends chain, provenance of every key, and egress widening. */
export async function runExplain(name: string, opts: ExplainOptions, io: CliIo): Promise<number> {
  const ex = explainAgent(name, locations(opts, io));
  if (opts.json) {
    printWarnings(io, ex.warnings, painter(io.stderr, io.env));
    writeJson(io, ex);
    return 0;
  }
  const paint = painter(io.stdout, io.env);
  const text = renderExplanation(ex)
    .split("\n")
    .map((line) =>
      /^(agent|bottle|effective config|egress widening|warnings)/.test(line)
        ? paint("bold", line)
        : line,
    )
    .join("\n");
  io.stdout.write(text);
  return 0;
}
