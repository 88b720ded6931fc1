/**
 * goagent-style `tools.json`: `{"tools":[{name, description, schema, command, timeoutSec,
 * envPassthrough}]}`. Unlike goagent, unknown keys are errors (with "did you mean"), every error
 * names its key path or file:line:col, and a declared program that does not exist stops the run
 * before any model call.
 */
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { dirname, isAbsolute, normalize, resolve, sep } from "node:path";
import { didYouMean, formatKeyPath, lineColAt, suggest } from "@bottlekit/diagnostics";
import { AgentCliError } from "../errors.ts";

export interface ManifestTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments (the function's `parameters`). */
  schema: Record<string, unknown>;
  /** argv as declared (what the exec policy checks). */
  command: string[];
  /** argv with command[0] resolved to an absolute path (what runs). */
  resolved: string[];
  timeoutSec: number | undefined;
  envPassthrough: string[];
}

const TOOL_KEYS = ["name", "description", "schema", "command", "timeoutSec", "envPassthrough"];
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_RE = /^[A-Z_][A-Z0-9_]*$/;

function fail(file: string, path: (string | number)[], message: string, hint?: string): never {
  throw new AgentCliError("E_INVALID_INPUT", `${file}: ${formatKeyPath(path)}: ${message}`, {
    hint: hint ?? "see `agentcli --help` (tools.json) or the agentcli README",
  });
}

/** Parses and validates a tools.json text; `file` is used for messages and relative commands. */
export function parseToolsManifest(
  text: string,
  file: string,
  reserved: readonly string[],
): ManifestTool[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    const msg = error instanceof Error ? error.message : String(error);
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? lineColAt(text, Number(pos[1])) : undefined;
    throw new AgentCliError(
      "E_INVALID_INPUT",
      `${file}${where ? `:${where.line}:${where.col}` : ""}: not valid JSON (${msg})`,
      { hint: 'tools.json is {"tools":[{"name":…,"command":[…]}]}' },
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    fail(file, [], 'expected an object {"tools":[…]}');
  }
  for (const k of Object.keys(doc)) {
    if (k !== "tools")
      fail(
        file,
        [k],
        `unknown key; ${didYouMean(suggest(k, ["tools"])) || 'the only key is "tools"'}`,
      );
  }
  const list = (doc as { tools?: unknown }).tools;
  if (!Array.isArray(list)) fail(file, ["tools"], "expected an array of tools");
  const base = dirname(resolve(file));
  const seen = new Set<string>();
  return list.map((raw, i): ManifestTool => {
    const at = (...p: (string | number)[]) => ["tools", i, ...p];
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      fail(file, at(), "expected an object");
    const t = raw as Record<string, unknown>;
    for (const k of Object.keys(t)) {
      if (!TOOL_KEYS.includes(k)) {
        const dym = didYouMean(suggest(k, TOOL_KEYS));
        fail(
          file,
          at(k),
          `unknown key${dym ? `; ${dym}` : ""}`,
          `known keys: ${TOOL_KEYS.join(", ")}`,
        );
      }
    }
    const name = t["name"];
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      fail(file, at("name"), "required; letters, digits, _ and - (at most 64)");
    }
    if (seen.has(name)) fail(file, at("name"), `duplicate tool name "${name}"`);
    if (reserved.includes(name))
      fail(file, at("name"), `"${name}" is a built-in tool; choose another name`);
    seen.add(name);
    const description = t["description"] ?? "";
    if (typeof description !== "string") fail(file, at("description"), "expected a string");
    const schema = t["schema"] ?? { type: "object", properties: {} };
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
      fail(file, at("schema"), "expected a JSON Schema object");
    }
    const command = t["command"];
    if (
      !Array.isArray(command) ||
      command.length === 0 ||
      !command.every((c) => typeof c === "string" && c !== "")
    ) {
      fail(file, at("command"), "expected a non-empty array of non-empty strings (argv, no shell)");
    }
    const argv = command as string[];
    const first = argv[0] as string;
    let program: string;
    if (isAbsolute(first)) program = first;
    else {
      const norm = normalize(first);
      if (!norm.startsWith(`tools${sep}bin${sep}`)) {
        fail(
          file,
          at("command", 0),
          "a relative command[0] must be under ./tools/bin/",
          'use "./tools/bin/NAME" or an absolute path',
        );
      }
      program = resolve(base, norm);
    }
    const timeoutSec = t["timeoutSec"];
    if (
      timeoutSec !== undefined &&
      (typeof timeoutSec !== "number" || !(timeoutSec > 0) || timeoutSec > 3600)
    ) {
      fail(file, at("timeoutSec"), "expected a number of seconds between 0 and 3600");
    }
    const envRaw = t["envPassthrough"] ?? [];
    if (!Array.isArray(envRaw))
      fail(file, at("envPassthrough"), "expected an array of variable names");
    const env: string[] = [];
    envRaw.forEach((e, j) => {
      const up = typeof e === "string" ? e.toUpperCase() : "";
      if (!ENV_RE.test(up))
        fail(file, at("envPassthrough", j), "not a variable name ([A-Z_][A-Z0-9_]*)");
      if (!env.includes(up)) env.push(up);
    });
    return {
      name,
      description,
      schema: schema as Record<string, unknown>,
      command: argv,
      resolved: [program, ...argv.slice(1)],
      timeoutSec: timeoutSec as number | undefined,
      envPassthrough: env,
    };
  });
}

/** Reads, validates and pre-flights a tools.json: every program must exist and be executable. */
export async function loadToolsManifest(
  file: string,
  reserved: readonly string[],
): Promise<ManifestTool[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new AgentCliError(
      "E_INVALID_INPUT",
      `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? error})`,
      {
        hint: "check the --tools path",
      },
    );
  }
  const tools = parseToolsManifest(text, file, reserved);
  for (const [i, t] of tools.entries()) {
    try {
      await access(t.resolved[0] as string, constants.X_OK);
    } catch {
      fail(
        file,
        ["tools", i, "command", 0],
        `${t.resolved[0]}: not found or not executable`,
        "build the tool or fix the path",
      );
    }
  }
  return tools;
}
