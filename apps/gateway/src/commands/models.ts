import { createRegistry } from "@bottlekit/provider-registry";
import { type CliIo, EXIT } from "../cli.ts";
import { resolveConfig } from "../compose.ts";
import { GatewayError } from "../errors.ts";
import { routableModels } from "../table.ts";

/**
 * `models [--config FILE] [--provider ID] [--json]`: what the gateway can route right now, and
 * the configured aliases with what each resolves to.
 */
export async function models(
  opts: { config?: string; provider?: string; json?: boolean },
  io: CliIo,
): Promise<number> {
  const v = await resolveConfig({
    ...(opts.config !== undefined ? { configFile: opts.config } : {}),
    env: io.env,
  });
  if (v.value === undefined) {
    for (const e of v.errors) io.stderr.write(`error: ${e}\n`);
    return EXIT.usage;
  }
  const registry = createRegistry(v.registryInput);
  const all = routableModels(registry, io.env);
  const providers = [...new Set(all.map((m) => m.provider))].sort();
  if (opts.provider !== undefined && !providers.includes(opts.provider)) {
    const { didYouMean, suggest } = await import("@bottlekit/diagnostics");
    const near = didYouMean(suggest(opts.provider, providers));
    throw new GatewayError(
      "E_USAGE",
      `no routable models for provider "${opts.provider}"${near ? `; ${near}` : ""}`,
      {
        hint: providers.length
          ? `routable providers: ${providers.join(", ")}`
          : "set a provider API key (e.g. OPENAI_API_KEY) or pass --config",
      },
    );
  }
  const list = opts.provider === undefined ? all : all.filter((m) => m.provider === opts.provider);
  const aliases: { alias: string; target: string; provider: string | null }[] = [];
  for (const [alias, target] of Object.entries(registry.config.aliases)) {
    let provider: string | null = null;
    try {
      provider = registry.resolve(alias).provider;
    } catch {
      provider = null;
    }
    if (opts.provider === undefined || provider === opts.provider)
      aliases.push({ alias, target, provider });
  }
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ models: list, aliases })}\n`);
    return EXIT.ok;
  }
  if (list.length === 0 && aliases.length === 0) {
    io.stderr.write(
      "nothing is routable: set a provider API key (e.g. OPENAI_API_KEY) or pass --config\n",
    );
    return EXIT.ok;
  }
  for (const m of list) io.stdout.write(`${m.id}\n`);
  for (const a of aliases) io.stdout.write(`${a.alias} -> ${a.target} (alias)\n`);
  return EXIT.ok;
}
