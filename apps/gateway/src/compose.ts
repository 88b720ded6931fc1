import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import type { Approvals } from "@bottlekit/approvals";
import {
  BUDGET_SOURCE_RANK,
  bottlekitHome,
  defaultStoreUrl,
  openStore,
  type Store,
} from "@bottlekit/budget-store";
import {
  type ControlServer,
  createProxyHost,
  type ProxyHost,
  type ProxyHostOptions,
  startControlServer,
} from "@bottlekit/egress-proxy";
import { createRegistry, listProviders, type Registry } from "@bottlekit/provider-registry";
import {
  type CheckedConfig,
  type ConfigValidation,
  type GatewayConfig,
  isLoopbackHost,
  loadGatewayConfig,
  parseListen,
  validateGatewayConfig,
  zeroConfigValidation,
} from "./config.ts";
import { followStoreCutoffs } from "./cutoff-feed.ts";
import { createGatewayDlp } from "./dlp.ts";
import { GatewayError } from "./errors.ts";
import { IdentityResolver } from "./identity.ts";
import type { LocalCli } from "./local-cli/index.ts";
import { loadManifestPolicies } from "./manifests.ts";
import { createMetering } from "./metering.ts";
import { ProxyCutoffs } from "./proxy-cutoffs.ts";
import { Router } from "./router.ts";
import { createGateway, type Gateway, type GatewayLogEvent } from "./server.ts";
import { openStoreInWorker } from "./store-proxy.ts";
import { routableModels, routingTable } from "./table.ts";

export const DEFAULT_LISTEN = "127.0.0.1:4100";

/** `lazyStart`: how long after `ready()` the upstream HTTP client starts loading on its own. */
const LAZY_WARM_DELAY_MS = 500;

export interface StartOptions {
  /** Config file; omitted → zero-config (every provider whose key env var is set). */
  configFile?: string;
  /** An already-parsed config object (tests); ignored when `configFile` is set. */
  config?: unknown;
  /** `HOST:PORT`; default from the config, then 127.0.0.1:4100. Port 0 picks a free port. */
  listen?: string;
  /** Store URL; default from the config, then the embedded SQLite file in `$BOTTLEKIT_HOME`. */
  store?: string;
  env?: NodeJS.ProcessEnv;
  log?: (event: GatewayLogEvent) => void;
  /**
   * Run the budget store in a worker thread (default false). In the thread, synchronous SQLite
   * (and waits on another process's write lock) never blocks the event loop, but every call pays
   * two thread hops: measured, that costs more (about 0.1 ms CPU per call and 40% of the
   * throughput at 64 concurrent calls) than the short group-committed transactions it moves away.
   */
  storeInWorker?: boolean;
  /**
   * The proxy door (default false): also start the egress-proxy host, whose intercepted requests
   * to provider API hosts run through this gateway's pipeline (identity = the bottle session),
   * and serve its control socket under `$BOTTLEKIT_HOME/state/` (0600). `bottle run` embeds a
   * controller this way; `bottle-gateway up` turns it on.
   */
  proxyDoor?: boolean;
  /**
   * With the proxy door: serve its control socket (default true). An embedded controller
   * (`bottle run`) turns it off, so that another run never registers with a controller that
   * goes away when this run ends.
   */
  proxyControlSocket?: boolean;
  /**
   * Return as soon as the gateway listens (default false), before loading what only its traffic
   * needs: the approvals service of the proxy door and the DLP scanners, the gateway's and those
   * of the proxy door's sessions (whose build also checks that the config can be enforced, e.g.
   * that no known secret is too short to protect; a session's are built by its first request
   * if that comes before `ready()`).
   * `ready()` does that; the upstream HTTP client (undici) loads 500 ms later, or with the first
   * model call if that comes first; the caller must await `ready()` before an agent starts. `bottle run` calls it
   * while its sandbox runs the startup probe. Until then a request to the approvals host is
   * refused like any undeclared host and a DLP `supervise` hold has no supervisor (so it is
   * refused too); a model call always waits for the HTTP client.
   */
  lazyStart?: boolean;
  /**
   * Whether the API door, listening on loopback while no gateway key exists, takes a call without
   * a key (as bottle `default`, with the host's provider keys). Default true: `bottle-gateway up`
   * on loopback works without keys. `bottle run`'s embedded controller passes false: its agent
   * comes through the proxy door, and no other local process (another user's included) may spend
   * the host's keys through the API door while the run lasts; a call without a gateway key is 401.
   */
  keylessLoopback?: boolean;
  /** Proxy door, tests and enterprise setups only: passed to the egress-proxy host. */
  proxyOptions?: Pick<ProxyHostOptions, "resolve" | "upstreamCa" | "credentialSource">;
  /**
   * Budget-store group commit window for settles (ms, default 0: a settle commits on the next
   * event-loop turn, with whatever else is queued by then). With 1 ms, a settle at c=1 rode in
   * the next call's reserve transaction, on that call's critical path: measured +0.1 ms added
   * p50 against 0, with no gain at c=64 (calls in flight already share transactions there).
   */
  storeGroupCommitMs?: number;
  /** Identity cache TTL (ms); tests set 0 so revocations apply at once. */
  identityCacheMs?: number;
}

export interface RunningGateway {
  gateway: Gateway;
  store: Store;
  address: AddressInfo;
  /** `http://host:port` */
  url: string;
  config: GatewayConfig;
  /** Configured routes and their credential source (names only), for the startup log. */
  providers: string[];
  /** The proxy door, when enabled: the egress-proxy host and its control socket path. */
  proxy?: { host: ProxyHost; controlSocketPath: string | undefined };
  /**
   * Resolves once everything the gateway's traffic uses is loaded (already done unless
   * `lazyStart`): the approvals service is in the proxy host and the DLP scanners are built; the
   * upstream HTTP client is loaded (with `lazyStart`, 500 ms later or with the first model call,
   * which waits for it). Rejects when the approvals service cannot start or the DLP
   * config cannot be enforced.
   */
  ready(): Promise<void>;
  close(drainMs?: number): Promise<void>;
}

/**
 * An explicitly named SQLite store must live in a directory that exists: creating directories
 * wherever a typo points would scatter ledgers (only the default home is created on demand).
 */
export function assertStoreDirExists(url: string): void {
  if (!url.startsWith("sqlite:") || url === "sqlite::memory:") return;
  const file = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
  const dir = dirname(resolve(file));
  if (existsSync(dir)) return;
  throw new GatewayError("E_USAGE", `the store's directory ${dir} does not exist`, {
    hint: `create it first (mkdir -p ${dir}), or fix --store / the config's store`,
  });
}

/** Why `listen` failed, as one line and a fix (the port is taken, or needs privileges). */
function listenError(error: unknown, listenText: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    return new GatewayError(
      "E_USAGE",
      `cannot listen on ${listenText}: the address is already in use`,
      {
        hint: "another gateway may be running (stop it first), or pass --listen 127.0.0.1:<another port>",
        cause: error,
      },
    );
  }
  if (code === "EACCES" || code === "EADDRNOTAVAIL") {
    return new GatewayError(
      "E_USAGE",
      `cannot listen on ${listenText}: ${code === "EACCES" ? "permission denied" : "no such local address"}`,
      {
        hint: "use a port above 1023 on an address of this machine, e.g. --listen 127.0.0.1:4100",
        cause: error,
      },
    );
  }
  return error;
}

/** Zero-config: one wildcard entry per network provider whose API-key env var is set. */
export function zeroConfigProviders(
  env: NodeJS.ProcessEnv,
): { model: string; access_key: string }[] {
  const out: { model: string; access_key: string }[] = [];
  for (const p of listProviders()) {
    if (p.kind !== "network") continue;
    const name = p.apiKeyEnv.find((n) => (env[n] ?? "") !== "");
    if (name !== undefined && !p.baseUrlRequired)
      out.push({ model: `${p.id}/*`, access_key: `$${name}` });
  }
  return out;
}

/**
 * Loads and validates the config (file, object, or zero-config): an invalid one's errors are
 * listed (E_CONFIG is thrown only for a file that cannot be read). A zero-config one comes with
 * its registry part checked.
 */
export async function resolveConfig(
  options: Pick<StartOptions, "configFile" | "config" | "env">,
): Promise<ConfigValidation | CheckedConfig> {
  const env = options.env ?? process.env;
  if (options.configFile !== undefined) return loadGatewayConfig(options.configFile, env);
  if (options.config !== undefined) return validateGatewayConfig(options.config, env);
  return zeroConfigValidation(zeroConfigProviders(env));
}

/** Builds the registry, store, DLP and server from a config and starts listening. */
export async function startGateway(options: StartOptions = {}): Promise<RunningGateway> {
  const env = options.env ?? process.env;
  const v = await resolveConfig(options);
  if (v.value === undefined) {
    throw new GatewayError("E_CONFIG", `invalid gateway config:\n  ${v.errors.join("\n  ")}`, {
      hint: "fix the keys above; `bottle-gateway check --config FILE` prints the same list",
    });
  }
  const config = v.value;
  const listenText = options.listen ?? config.listen ?? DEFAULT_LISTEN;
  const listen = parseListen(listenText);
  if (listen === undefined) {
    throw new GatewayError("E_USAGE", `--listen "${listenText}" is not HOST:PORT`, {
      hint: "use e.g. 127.0.0.1:4100",
    });
  }
  const home = bottlekitHome(env);
  // $BOTTLEKIT_STORE (of the environment this gateway was given) as the other commands read it:
  // a store URL, or a plain path meaning a SQLite file.
  const envStore = env["BOTTLEKIT_STORE"] ? storeFromEnv(env["BOTTLEKIT_STORE"]) : undefined;
  const storeUrl = options.store ?? config.store ?? envStore ?? defaultStoreUrl(home);
  if (options.store !== undefined || config.store !== undefined || envStore !== undefined)
    assertStoreDirExists(storeUrl);
  let store: Store;
  try {
    // A checkpoint (two fsyncs) runs inside the commit that crosses the WAL mark; at the default
    // 1000 pages that was about one request in a hundred at c=1, i.e. the p99.
    const storeOptions = {
      home,
      groupCommitMs: options.storeGroupCommitMs ?? 0,
      walAutocheckpointPages: 4000,
    };
    store =
      options.storeInWorker === true
        ? await openStoreInWorker(storeUrl, storeOptions)
        : await openStore(storeUrl, storeOptions);
  } catch (error) {
    const e = error as { message?: string; hint?: string };
    throw new GatewayError(
      "E_STORE",
      `cannot open the budget store: ${e.message ?? String(error)}`,
      {
        hint: e.hint ?? "check --store (sqlite:<path>) and that $BOTTLEKIT_HOME is writable",
        cause: error,
      },
    );
  }
  let localCli: LocalCli | undefined;
  try {
    const loopback = isLoopbackHost(listen.host);
    if (!loopback) {
      const keys = await store.listGatewayKeys();
      if (!keys.some((k) => k.revokedAt === undefined)) {
        throw new GatewayError(
          "E_POLICY",
          `refusing to listen on ${listenText}: a non-loopback address needs gateway keys, and none exist`,
          {
            hint: "create one with `bottle-gateway keys create --bottle B --agent A`, or listen on 127.0.0.1",
          },
        );
      }
    }
    if (config.default_policy !== undefined) await store.setDefaultPolicy(config.default_policy);
    // The config's budgets are one source, replaced as a whole at each start (a budget removed
    // from the file is gone); operator and run budgets (other sources) are left alone. A
    // zero-config start (an embedded controller, `npm start`) has no config budgets to say
    // anything about, so it leaves those another gateway's config wrote.
    const explicitConfig = options.configFile !== undefined || options.config !== undefined;
    if (explicitConfig)
      await store.replaceBudgets(
        "config",
        config.budgets.map((b) => ({
          scope: b.scope,
          ...(b.key !== undefined ? { key: b.key } : {}),
          provider: b.provider,
          ...(b.tokens !== undefined ? { tokens: b.tokens } : {}),
          ...(b.usd !== undefined ? { usd: b.usd } : {}),
          ...(b.window !== undefined ? { window: b.window as `${number}d` } : {}),
          ...(b.policy !== undefined ? { policy: b.policy } : {}),
        })),
      );
    // Bottle and agent manifests of the home: their budgets (source "manifest") and each
    // bottle's extends chain as its budget parents.
    const manifests = loadManifestPolicies(home, env);
    await store.replaceBudgets("manifest", manifests.budgets);
    for (const p of manifests.problems)
      options.log?.({ level: "warn", event: "manifest.skipped", message: p });
    // local-cli wiring: claude-cli entries are pointed at a loopback bridge that spawns the CLI.
    // A zero-config start has none (its entries are network providers, already checked): it
    // neither loads the bridges' module nor validates its registry part again.
    let registry: Registry;
    if ("registry" in v && v.registry !== undefined) registry = createRegistry(v.registry);
    else {
      const { startLocalCli } = await import("./local-cli/index.ts");
      localCli = await startLocalCli(v.registryInput, {
        env,
        home,
        loopback,
        ...(options.log ? { log: options.log } : {}),
      });
      registry = createRegistry(localCli.registryInput);
    }
    // Listed on the first request for it: with a wildcard provider this reads the model catalogs,
    // which a lazily started gateway loads after its start (see GatewayServer.warm).
    let models: { id: string; owned_by: string }[] | undefined;
    const listModels = () =>
      (models ??= routableModels(registry, env).map((m) => ({ id: m.id, owned_by: m.provider })));
    const router = new Router(registry, env);
    const dlp = createGatewayDlp(config, env, registry, (bottle) =>
      manifests.dlpRoutes.get(bottle),
    );
    const identity = new IdentityResolver(store, {
      loopback: loopback && options.keylessLoopback !== false,
      parentsOf: (bottle) => manifests.parents.get(bottle) ?? [],
      ...(options.identityCacheMs !== undefined
        ? { cacheTtlMs: options.identityCacheMs, keysRefreshMs: options.identityCacheMs }
        : {}),
    });
    // The proxy door, once started: a budget that cuts a bottle off drops its live egress there.
    let cutoffs: ProxyCutoffs | undefined;
    const gateway = createGateway({
      router,
      store,
      dlp,
      identity,
      metering: createMetering(),
      upstreamTimeoutMs: config.timeouts.upstream_ms,
      streamIdleTimeoutMs: config.timeouts.stream_idle_ms,
      defaultMaxTokens: config.default_max_tokens,
      maxBodyBytes: config.max_body_bytes,
      ...(options.log ? { log: options.log } : {}),
      listModels,
      onCutoff: (notice) => cutoffs?.apply(notice),
    });
    const address = await gateway.listen(listen.host, listen.port).catch((error: unknown) => {
      throw listenError(error, listenText);
    });
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    let approvals: Promise<Approvals> | undefined;
    let proxy:
      | {
          host: ProxyHost;
          control: ControlServer | undefined;
          approvals: () => Promise<Approvals>;
        }
      | undefined;
    if (options.proxyDoor === true) {
      const proxyHost = createProxyHost({
        home,
        // Credentials come from the environment this gateway was given, not the process's.
        credentialSource: (spec) => env[spec.hostEnv ?? spec.name],
        ...options.proxyOptions,
        llmHandler: (req, res, ctx) => gateway.handleProxied(req, res, ctx),
        onAudit: (e) => options.log?.({ level: "info", event: "proxy.decision", ...e }),
        // Lazy: a session's DLP scanners are built by `ready()` (or its first request), not while
        // it registers, which the sandbox waits for.
        ...(options.lazyStart === true ? { deferSessionScanners: true } : {}),
      });
      cutoffs = new ProxyCutoffs(proxyHost, store, options.log);
      // Approvals: the agent-facing MCP server on the proxy's reserved host, the operator's queue
      // (`bottle approvals`), and approved changes put in force in this proxy. Loaded once, now
      // or (lazyStart) by `ready()`; sessions already registered are told then.
      const loadApprovals = async (): Promise<Approvals> => {
        const { createApprovals } = await import("@bottlekit/approvals");
        return createApprovals(proxyHost, {
          home,
          onBudget: async (grant) => {
            // Raise the bottle's budget to the approved figure, keeping the window and policy of
            // the budget that governs it today (the highest-precedence source wins).
            const existing = await store.listBudgets({
              scope: "bottle",
              key: grant.bottle,
              provider: grant.provider,
            });
            const governing = existing.sort(
              (a, b) => BUDGET_SOURCE_RANK[b.source] - BUDGET_SOURCE_RANK[a.source],
            )[0];
            await store.defineBudget({
              scope: "bottle",
              key: grant.bottle,
              provider: grant.provider,
              tokens: grant.tokens,
              ...(governing !== undefined ? { window: governing.window } : {}),
              ...(governing?.policy !== undefined ? { policy: governing.policy } : {}),
              source: governing?.source === "flag" ? "flag" : "operator",
            });
          },
        });
      };
      const ensureApprovals = (): Promise<Approvals> => {
        approvals ??= loadApprovals();
        return approvals;
      };
      try {
        // Started as before: in force before the control socket takes its first session.
        if (options.lazyStart !== true) await ensureApprovals();
        proxy = {
          host: proxyHost,
          control:
            options.proxyControlSocket === false ? undefined : await startControlServer(proxyHost),
          approvals: ensureApprovals,
        };
      } catch (error) {
        cutoffs.close();
        await closeApprovals(approvals);
        await proxyHost.close();
        await gateway.close(0);
        throw error;
      }
    }
    const ensureApprovals_ = proxy?.approvals;
    let readiness: Promise<void> | undefined;
    let warmTimer: NodeJS.Timeout | undefined;
    let closing = false;
    const ready = (): Promise<void> => {
      readiness ??= Promise.all([
        ensureApprovals_?.(),
        // A gateway started whole has its client before it serves; a lazy one (below) after.
        options.lazyStart === true ? undefined : gateway.warm(),
        // The DLP scanners are built here (not while starting): a config they cannot enforce
        // (a known secret too short to protect) fails here, before any agent starts.
        Promise.resolve().then(() => dlp.prepare()),
        // The proxy sessions' scanners (deferred when lazy): one that cannot be built fails here.
        Promise.resolve().then(() => proxy?.host.prepareSessions()),
      ]).then(() => {
        // Lazy: the upstream HTTP client is not awaited, and not loaded at once either: loading
        // it is tens of ms of this thread's time, just when the agent starts (and a short-lived
        // command ends). It loads once the run has settled, or with the first model call, which
        // waits for it anyway.
        if (options.lazyStart === true && warmTimer === undefined && !closing) {
          warmTimer = setTimeout(() => {
            gateway.warm().catch(() => undefined);
          }, LAZY_WARM_DELAY_MS);
          warmTimer.unref();
        }
      });
      readiness.catch(() => {
        readiness = undefined;
      });
      return readiness;
    };
    if (options.lazyStart !== true) {
      try {
        await ready();
      } catch (error) {
        cutoffs?.close();
        await closeApprovals(approvals);
        await proxy?.control?.close();
        await proxy?.host.close();
        await gateway.close(0);
        throw error;
      }
    }
    // Cutoffs recorded by any gateway on this store stop the bottle's running calls here.
    const feed = followStoreCutoffs(store, gateway, () => cutoffs, options.log);
    await feed.ready;
    return {
      gateway,
      store,
      address,
      url: `http://${host}:${address.port}`,
      config,
      providers: routingTable(registry, env).map((r) => `${r.model} (${r.credential})`),
      ...(proxy !== undefined
        ? { proxy: { host: proxy.host, controlSocketPath: proxy.control?.socketPath } }
        : {}),
      ready,
      async close(drainMs = config.timeouts.drain_ms) {
        closing = true;
        clearTimeout(warmTimer);
        feed.close();
        cutoffs?.close();
        if (proxy !== undefined) {
          await proxy.control?.close();
          await closeApprovals(approvals);
          await proxy.host.close();
        }
        await gateway.close(drainMs);
        await localCli?.close();
        await store.close();
      },
    };
  } catch (error) {
    await localCli?.close();
    await store.close();
    throw error;
  }
}

/** Closes the approvals service if it was loaded (or is loading); one that failed to load has nothing open. */
async function closeApprovals(loading: Promise<Approvals> | undefined): Promise<void> {
  const a = await loading?.catch(() => undefined);
  await a?.close();
}

/** `$BOTTLEKIT_STORE`: a `sqlite:` or `postgres://` URL as is; anything else is a SQLite file path. */
export function storeFromEnv(value: string): string {
  return /^(sqlite:|postgres(ql)?:)/i.test(value) ? value : `sqlite:${value}`;
}
