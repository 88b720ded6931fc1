import { listManifests, resolveDirs } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, locations, writeJson } from "../context.ts";
import { printWarnings } from "./issues.ts";

export interface ListOptions extends LocationFlags {
  json?: boolean;
}

/** `bottle list`: bottles and agents by name (files are not parsed, so broken ones still list). */
export async function runList(opts: ListOptions, io: CliIo): Promise<number> {
  const loc = locations(opts, io);
  const dirs = resolveDirs(loc);
  const listing = listManifests(loc);
  const errPaint = painter(io.stderr, io.env);
  printWarnings(io, listing.warnings, errPaint);
  if (opts.json) {
    writeJson(io, {
      home: dirs.home,
      project: dirs.project ?? null,
      bottles: listing.bottles.map((b) => ({ name: b.name, file: b.file })),
      agents: listing.agents.map((a) => ({
        name: a.name,
        file: a.file,
        source: a.source,
        ...(a.shadows === undefined ? {} : { shadows: a.shadows }),
      })),
      warnings: listing.warnings,
    });
    return 0;
  }
  const paint = painter(io.stdout, io.env);
  const lines: string[] = [];
  lines.push(paint("bold", `bottles`) + paint("dim", `  ${dirs.bottles}`));
  if (listing.bottles.length === 0) lines.push("  (none)");
  for (const b of listing.bottles) lines.push(`  ${b.name}`);
  lines.push("");
  lines.push(
    paint("bold", "agents") +
      paint("dim", `  ${dirs.agents}${dirs.projectAgents ? ` + ${dirs.projectAgents}` : ""}`),
  );
  if (listing.agents.length === 0) lines.push("  (none)");
  const width = Math.max(0, ...listing.agents.map((a) => a.name.length));
  for (const a of listing.agents) {
    const note = a.shadows === undefined ? "" : paint("yellow", `  (shadows ${a.shadows})`);
    lines.push(`  ${a.name.padEnd(width)}  ${a.source}${note}`);
  }
  io.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
