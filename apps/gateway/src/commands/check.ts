import { matchRoute, validateRoutes } from "@bottlekit/egress-dlp";
import { createRegistry } from "@bottlekit/provider-registry";
import { type CliIo, EXIT } from "../cli.ts";
import { resolveConfig } from "../compose.ts";
import { type RouteRow, routingTable } from "../table.ts";

/** Letters and digits: what the known-secret scanner matches a credential by. */
function scannableChars(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) | 0x20;
    if ((c >= 0x61 && c <= 0x7a) || (value.charCodeAt(i) >= 0x30 && value.charCodeAt(i) <= 0x39))
      n++;
  }
  return n;
}

/**
 * Credentials the known-secret scanner cannot protect: it needs 12 letters and digits to tell a
 * key from ordinary text. From 8 characters on the gateway refuses to start with such a key (an
 * error here); a shorter value is not scanned at all (a warning). Names only, never values.
 */
export function shortCredentialProblems(
  rows: readonly RouteRow[],
  env: NodeJS.ProcessEnv,
): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    if (!r.credential.startsWith("env:")) continue;
    const name = r.credential.slice(4);
    if (seen.has(name)) continue;
    seen.add(name);
    const value = env[name] ?? "";
    const chars = scannableChars(value);
    if (chars >= 12) continue;
    const why = `${name} has ${chars} letters and digits; the known-secret scanner needs at least 12 to tell a key from ordinary text`;
    if (value.length >= 8) {
      errors.push(`${why}, so \`up\` refuses to start. Set ${name} to the provider's real key`);
    } else {
      warnings.push(
        `${why}: it is not protected from leaking. Set ${name} to the provider's real key`,
      );
    }
  }
  return { errors, warnings };
}

/**
 * With a `routes` list, a provider whose upstream no route covers gets 403 on every call. Say so
 * at `check` time, naming the host and the route to add.
 */
export function uncoveredProviderWarnings(
  routesInput: unknown,
  rows: readonly RouteRow[],
): string[] {
  if (routesInput === undefined) return [];
  const routes = validateRoutes(routesInput).value ?? [];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    if (r.baseUrl === null || r.kind !== "network") continue;
    let url: URL;
    try {
      url = new URL(r.baseUrl);
    } catch {
      continue;
    }
    const base = url.pathname.replace(/\/+$/, "");
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const covered = r.apis.some((api) => {
      const path = `${base}${api === "anthropic-messages" ? "/v1/messages" : api === "openai-responses" ? "/responses" : "/chat/completions"}`;
      return matchRoute(routes, { host: url.hostname, port, method: "POST", path }).ok;
    });
    const key = `${url.hostname}:${port}`;
    if (covered || seen.has(key)) continue;
    seen.add(key);
    out.push(
      `routes: no route covers ${r.provider} (${url.hostname}${url.port ? `:${url.port}` : ""}); every call to ${r.model} will be refused with 403. Add a route (\`- host: ${url.hostname}\`) or remove \`routes\` to allow every configured provider`,
    );
  }
  return out;
}

/** `check [--config FILE] [--json]`: validates and prints the routing table; exit 2 when invalid. */
export async function check(opts: { config?: string; json?: boolean }, io: CliIo): Promise<number> {
  const v = await resolveConfig({
    ...(opts.config !== undefined ? { configFile: opts.config } : {}),
    env: io.env,
  });
  if (v.value === undefined) {
    if (opts.json)
      io.stdout.write(
        `${JSON.stringify({ valid: false, errors: v.errors, warnings: v.warnings })}\n`,
      );
    for (const e of v.errors) io.stderr.write(`error: ${e}\n`);
    for (const w of v.warnings) io.stderr.write(`warning: ${w}\n`);
    io.stderr.write(
      `${v.errors.length} error(s); the gateway would refuse to start with this config.\n`,
    );
    return EXIT.usage;
  }
  const registry = createRegistry(v.registryInput);
  const rows = routingTable(registry, io.env);
  const cfg = v.value;
  v.warnings.push(...uncoveredProviderWarnings(cfg.routes, rows));
  const short = shortCredentialProblems(rows, io.env);
  v.warnings.push(...short.warnings);
  if (short.errors.length > 0) {
    if (opts.json)
      io.stdout.write(
        `${JSON.stringify({ valid: false, errors: short.errors, warnings: v.warnings })}\n`,
      );
    for (const e of short.errors) io.stderr.write(`error: ${e}\n`);
    io.stderr.write(
      `${short.errors.length} error(s); the gateway would refuse to start with this environment.\n`,
    );
    return EXIT.usage;
  }
  if (opts.json) {
    io.stdout.write(
      `${JSON.stringify({
        valid: true,
        warnings: v.warnings,
        routes: rows,
        aliases: registry.config.aliases,
        budgets: cfg.budgets,
        dlp: {
          outbound: {
            on_match: cfg.dlp.outbound.on_match,
            detectors: cfg.dlp.outbound.detectors,
            canary_env: cfg.dlp.outbound.canary_env,
          },
          inbound: cfg.dlp.inbound,
        },
      })}\n`,
    );
  } else {
    for (const w of v.warnings) io.stderr.write(`warning: ${w}\n`);
    io.stdout.write(
      "MODEL                          PROVIDER       UPSTREAM MODEL             APIS                                  CREDENTIAL\n",
    );
    for (const r of rows) {
      io.stdout.write(
        `${(r.model + (r.default ? " (default)" : "")).padEnd(30)} ${r.provider.padEnd(14)} ${r.upstreamModel.padEnd(26)} ${r.apis.join(",").padEnd(37)} ${r.credential}\n`,
      );
    }
    for (const r of rows)
      if (r.translated.length > 0)
        io.stdout.write(
          `translated ${r.model}: ${r.translated.map((t) => `${t.client} -> ${t.upstream}`).join(", ")}\n`,
        );
    for (const [alias, target] of Object.entries(registry.config.aliases))
      io.stdout.write(`alias ${alias} -> ${target}\n`);
    for (const b of cfg.budgets) {
      io.stdout.write(
        `budget ${b.scope}${b.key ? ` ${b.key}` : ""} ${b.provider}: ${b.tokens !== undefined ? `${b.tokens} tokens` : ""}${b.usd !== undefined ? ` $${b.usd}` : ""} window ${b.window ?? "none"} policy ${b.policy ?? cfg.default_policy ?? "default"}\n`,
      );
    }
    io.stdout.write(
      `dlp outbound: ${cfg.dlp.outbound.on_match} on ${cfg.dlp.outbound.detectors.join(", ")}${cfg.dlp.outbound.canary_env.length ? `; canaries from ${cfg.dlp.outbound.canary_env.join(", ")}` : ""}\n`,
    );
    io.stdout.write(`dlp inbound: ${cfg.dlp.inbound.enabled ? cfg.dlp.inbound.on_match : "off"}\n`);
    if (rows.length === 0)
      io.stderr.write(
        "no model_providers: set a provider API key (e.g. OPENAI_API_KEY) or pass --config\n",
      );
    const missing = rows.filter((r) => r.credential.startsWith("missing:"));
    for (const r of missing)
      io.stderr.write(`warning: ${r.model}: no credential; set ${r.credential.slice(8)}\n`);
  }
  return EXIT.ok;
}
