import { explainResolved, redactConfig, resolveAgent, type SourceRef } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, locations, writeJson } from "../context.ts";
import { printWarnings } from "./issues.ts";

export interface ShowOptions extends LocationFlags {
  json?: boolean;
}

function where(s: SourceRef): string {
  return s.kind === "default" ? "default" : `${s.file}:${s.line}:${s.col}`;
}

/**
 * `bottle show <agent>`: the effective agent + bottle config with the file that set each key.
 * Values copied from the host or asked at launch are shown as `<from $NAME>` / `<asked at launch>`.
 */
export async function runShow(name: string, opts: ShowOptions, io: CliIo): Promise<number> {
  const agent = resolveAgent(name, locations(opts, io));
  printWarnings(io, agent.warnings, painter(io.stderr, io.env));
  const config = redactConfig(agent.config);
  const provenance = Object.fromEntries(
    agent.provenance.map((p) => [
      p.path,
      { ...p.source, ...(p.overridden.length > 0 ? { overridden: p.overridden } : {}) },
    ]),
  );
  if (opts.json) {
    writeJson(io, {
      agent: {
        name: agent.name,
        file: agent.file,
        source: agent.source,
        ...(agent.shadows === undefined ? {} : { shadows: agent.shadows }),
        ...(agent.description === undefined ? {} : { description: agent.description }),
      },
      chain: agent.bottle.order,
      config,
      provenance,
      prompt: agent.prompt,
      warnings: agent.warnings,
    });
    return 0;
  }
  const paint = painter(io.stdout, io.env);
  const out: string[] = [];
  out.push(`${paint("bold", `agent ${agent.name}`)} (${agent.source}) ${agent.file}`);
  if (agent.shadows) out.push(paint("yellow", `  shadows ${agent.shadows}`));
  out.push(`bottle ${agent.config.bottle}: ${agent.bottle.order.join(" -> ")}`);
  out.push("");
  for (const k of explainResolved(agent).keys) {
    out.push(`${paint("cyan", k.path)} = ${k.value}  ${paint("dim", `<- ${where(k.source)}`)}`);
  }
  const lines = agent.prompt.split("\n").filter((l) => l.trim() !== "").length;
  out.push("", paint("dim", `prompt: ${lines} line(s) from ${agent.file}`));
  io.stdout.write(`${out.join("\n")}\n`);
  return 0;
}
