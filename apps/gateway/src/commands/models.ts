import { createRegistry } from "@bottlekit/provider-registry";
import { type CliIo, EXIT } from "../cli.ts";
import { resolveConfig } from "../compose.ts";
import { routableModels } from "../table.ts";

/** `models [--config FILE] [--json]`: what the gateway can route right now. */
export async function models(
  opts: { config?: string; json?: boolean },
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
  const list = routableModels(createRegistry(v.registryInput), io.env);
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ models: list })}\n`);
    return EXIT.ok;
  }
  if (list.length === 0) {
    io.stderr.write(
      "nothing is routable: set a provider API key (e.g. OPENAI_API_KEY) or pass --config\n",
    );
    return EXIT.ok;
  }
  for (const m of list) io.stdout.write(`${m.id}\n`);
  return EXIT.ok;
}
