import { bottlekitHome, defaultStoreUrl, openStore, type Store } from "@bottlekit/budget-store";
import { type CliIo, EXIT } from "../cli.ts";

interface StoreOpts {
  store?: string;
  json?: boolean;
}

async function withStore<T>(opts: StoreOpts, io: CliIo, fn: (s: Store) => Promise<T>): Promise<T> {
  const home = bottlekitHome(io.env);
  const store = await openStore(opts.store ?? defaultStoreUrl(home), { home });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** `keys create --bottle B --agent A [--label L]`: prints the plaintext key once. */
export async function create(
  opts: StoreOpts & { bottle: string; agent: string; label?: string },
  io: CliIo,
): Promise<number> {
  const k = await withStore(opts, io, (s) =>
    s.createGatewayKey({
      bottle: opts.bottle,
      agent: opts.agent,
      ...(opts.label !== undefined ? { label: opts.label } : {}),
    }),
  );
  if (opts.json) {
    io.stdout.write(
      `${JSON.stringify({ id: k.id, key: k.key, bottle: k.bottle, agent: k.agent, label: k.label ?? null, createdAt: iso(k.createdAt) })}\n`,
    );
  } else {
    io.stdout.write(`${k.key}\n`);
    io.stderr.write(
      `created gateway key ${k.id} for bottle "${k.bottle}", agent "${k.agent}". The key above is shown once; store it now.\n` +
        "Clients send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.\n",
    );
  }
  return EXIT.ok;
}

/** `keys list`: ids, scopes and dates; never a plaintext key. */
export async function list(opts: StoreOpts, io: CliIo): Promise<number> {
  const keys = await withStore(opts, io, (s) => s.listGatewayKeys());
  if (opts.json) {
    io.stdout.write(
      `${JSON.stringify({
        keys: keys.map((k) => ({
          id: k.id,
          bottle: k.bottle,
          agent: k.agent,
          label: k.label ?? null,
          createdAt: iso(k.createdAt),
          revokedAt: iso(k.revokedAt),
        })),
      })}\n`,
    );
    return EXIT.ok;
  }
  if (keys.length === 0) {
    io.stderr.write(
      "no gateway keys; create one with `bottle-gateway keys create --bottle B --agent A`\n",
    );
    return EXIT.ok;
  }
  io.stdout.write(
    "ID                   BOTTLE           AGENT            CREATED                   STATUS\n",
  );
  for (const k of keys) {
    io.stdout.write(
      `${k.id.padEnd(20)} ${k.bottle.padEnd(16)} ${k.agent.padEnd(16)} ${iso(k.createdAt)?.padEnd(25)} ${k.revokedAt === undefined ? "active" : `revoked ${iso(k.revokedAt)}`}${k.label ? `  ${k.label}` : ""}\n`,
    );
  }
  return EXIT.ok;
}

/** `keys revoke <id>`: exit 1 when the id is unknown or already revoked. */
export async function revoke(id: string, opts: StoreOpts, io: CliIo): Promise<number> {
  const ok = await withStore(opts, io, (s) => s.revokeGatewayKey(id));
  if (opts.json) io.stdout.write(`${JSON.stringify({ id, revoked: ok })}\n`);
  if (!ok) {
    io.stderr.write(
      `bottle-gateway: no active key with id ${id}\nhint: see \`bottle-gateway keys list\`\n`,
    );
    return EXIT.failure;
  }
  if (!opts.json) io.stderr.write(`revoked ${id}\n`);
  return EXIT.ok;
}
