import { validatePaths } from "@bottlekit/manifest";
import type { CliIo } from "../cli.ts";
import { painter } from "../color.ts";
import { type LocationFlags, locations, writeJson } from "../context.ts";
import { renderIssue } from "./issues.ts";

export interface ValidateOptions extends LocationFlags {
  json?: boolean;
}

/**
 * A model check against provider-registry's catalog: an unknown provider, or a model the
 * provider's catalog does not list, is an error with the closest known ids. Loaded lazily so the
 * catalog is read only when there are agents to check.
 */
async function modelChecker(): Promise<
  (model: string) => { message: string; hint?: string } | undefined
> {
  const { createRegistry } = await import("@bottlekit/provider-registry");
  const { didYouMean, suggest } = await import("@bottlekit/diagnostics");
  const registry = createRegistry({});
  let catalog: string[] | undefined;
  return (model) => {
    let resolved: ReturnType<typeof registry.resolve>;
    try {
      resolved = registry.resolve(model);
    } catch (error) {
      const e = error as { message?: string; hint?: string };
      return {
        message: `model "${model}": ${e.message ?? String(error)}`,
        ...(e.hint !== undefined ? { hint: e.hint } : {}),
      };
    }
    if (resolved.kind !== "network") return undefined; // local agents have no catalog
    if (registry.modelInfo(resolved.provider, resolved.model) !== undefined) return undefined;
    catalog ??= registry.listModels({ include: "catalog" }).map((m) => m.id);
    const near = didYouMean(suggest(model, catalog, 3));
    return {
      message: `model "${model}" is not in provider-registry's catalog for ${resolved.provider}${near ? `; ${near}` : ""}`,
      hint: "use a provider/model id that `bottle-gateway models` lists, or add the model to the gateway's model_providers",
    };
  };
}

/**
 * `bottle validate [PATH…]`: checks every manifest (home and project, or the given files and
 * directories) and lists every problem. Exit 0 when valid (warnings allowed), 2 when not.
 */
export async function runValidate(
  paths: readonly string[],
  opts: ValidateOptions,
  io: CliIo,
): Promise<number> {
  const loc = locations(opts, io);
  const result = validatePaths(paths, loc, { checkModel: await modelChecker() });
  const errors = result.issues.filter((i) => i.severity === "error").length;
  const warnings = result.issues.length - errors;
  const code = result.ok ? 0 : 2;
  if (opts.json) {
    writeJson(io, { ok: result.ok, errors, warnings, files: result.files, issues: result.issues });
    return code;
  }
  const paint = painter(io.stdout, io.env);
  for (const issue of result.issues) io.stdout.write(`${renderIssue(issue, paint)}\n`);
  const errPaint = painter(io.stderr, io.env);
  const summary = `${result.files.length} manifest(s) checked: ${errors} error(s), ${warnings} warning(s)`;
  io.stderr.write(`${result.ok ? errPaint("green", summary) : errPaint("red", summary)}\n`);
  return code;
}
