import { bottlekitHome, defaultStoreUrl, openStore, type Store } from "@bottlekit/budget-store";
import { type CliIo, EXIT } from "../cli.ts";
import { assertStoreDirExists } from "../compose.ts";
import { GatewayError } from "../errors.ts";

/** Bottle and agent names, as manifests name them (the file name without `.md`). */
const NAME = /^[a-z][a-z0-9-]*$/;

interface StoreOpts {
  store?: string;
  json?: boolean;
}

async function withStore<T>(opts: StoreOpts, io: CliIo, fn: (s: Store) => Promise<T>): Promise<T> {
  const home = bottlekitHome(io.env);
  if (opts.store !== undefined) assertStoreDirExists(opts.store);
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
  for (const [flag, value] of [
    ["--bottle", opts.bottle],
    ["--agent", opts.agent],
  ] as const) {
    if (!NAME.test(value)) {
      throw new GatewayError("E_USAGE", `${flag} "${value}" is not a valid name`, {
        hint: "names are lower-case letters, digits and dashes, starting with a letter (as manifest file names: bottles/<name>.md)",
      });
    }
  }
  await warnWithoutManifest(opts.bottle, io);
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

/**
 * A key for a bottle without a manifest still works (budgets from the config and settings apply),
 * but routes, DLP settings and manifest budgets do not exist for it: say so, with the closest
 * bottle names, so a typo does not silently create an unbounded identity.
 */
async function warnWithoutManifest(bottle: string, io: CliIo): Promise<void> {
  const { listManifests } = await import("@bottlekit/manifest");
  const home = bottlekitHome(io.env);
  const names = listManifests({ home, cwd: home, env: io.env }).bottles.map((b) => b.name);
  if (names.includes(bottle)) return;
  const { didYouMean, suggest } = await import("@bottlekit/diagnostics");
  const near = didYouMean(suggest(bottle, names));
  io.stderr.write(
    `warning: no bottle manifest named "${bottle}" in ${home}/bottles${near ? ` (${near})` : ""}; ` +
      "the key will carry only the budgets of the gateway config and settings.yml. " +
      "Create the bottle with `bottle init` or check the name.\n",
  );
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

/**
 * `keys revoke <id>`: exit 1 when nothing was revoked, saying why: the id is a plaintext key
 * (never echoed), the key was already revoked (and when), or no key has that id (closest ids).
 */
export async function revoke(id: string, opts: StoreOpts, io: CliIo): Promise<number> {
  const { ok, keys } = await withStore(opts, io, async (s) => ({
    ok: await s.revokeGatewayKey(id),
    keys: await s.listGatewayKeys(),
  }));
  if (opts.json)
    io.stdout.write(`${JSON.stringify({ id: id.startsWith("bk_") ? null : id, revoked: ok })}\n`);
  if (!ok) {
    let why: string;
    let hint = "see `bottle-gateway keys list` for the ids";
    const known = keys.find((k) => k.id === id);
    if (id.startsWith("bk_")) {
      why =
        "that is a key, not a key id (the key itself is never stored, so it cannot be looked up)";
      hint =
        "revoke by id (gk_…): `bottle-gateway keys list` shows each key's id, bottle and agent";
    } else if (known?.revokedAt !== undefined) {
      why = `key ${id} was already revoked on ${iso(known.revokedAt)}`;
      hint = "nothing to do";
    } else {
      const { didYouMean, suggest } = await import("@bottlekit/diagnostics");
      const near = didYouMean(
        suggest(
          id,
          keys.map((k) => k.id),
        ),
      );
      why = `no key has the id ${id}${near ? `; ${near}` : ""}`;
      if (keys.length === 0) hint = "there are no gateway keys in this store (check --store)";
    }
    io.stderr.write(`bottle-gateway: ${why}\nhint: ${hint}\n`);
    return EXIT.failure;
  }
  if (!opts.json) io.stderr.write(`revoked ${id}\n`);
  return EXIT.ok;
}
