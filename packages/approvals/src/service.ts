import type { IncomingMessage, ServerResponse } from "node:http";
import { join, resolve as resolvePath } from "node:path";
import type { Route, RouteInput } from "@bottlekit/egress-dlp";
import type {
  ProxyHost,
  ProxyService,
  ServiceContext,
  SupervisedRequest,
} from "@bottlekit/egress-proxy";
import { resolveBottle, summarizeRoute } from "@bottlekit/manifest";
import {
  applyGrants,
  hostMatches,
  routeKey,
  type SessionState,
  validateBudget,
  validateRoute,
  wideningOf,
} from "./change.ts";
import { type ApprovalsConfig, loadConfig } from "./config.ts";
import { ApprovalsError } from "./errors.ts";
import { ApprovalStore } from "./store.ts";
import type { ToolHandlers } from "./tools.ts";
import type { Change, Proposal } from "./types.ts";

/** The reserved host an agent reaches the approvals MCP server at, through its own proxy. */
export const APPROVALS_HOST = "policy.bottlekit.internal";
/** The MCP endpoint (streamable HTTP): `https://policy.bottlekit.internal/mcp`. */
export const APPROVALS_URL = `https://${APPROVALS_HOST}/mcp`;

export interface ApprovalsOptions {
  /** `$BOTTLEKIT_HOME` (queue in `<home>/state/approvals.db`). Default: the proxy host's home. */
  home?: string;
  /** Default: `<home>/approvals.yml`, else defaults. */
  config?: ApprovalsConfig;
  /** Clock (tests). */
  now?: () => number;
  /** How often the controller looks for decisions made in other processes. Default 200 ms. */
  pollMs?: number;
  /** Puts an approved budget in force (the gateway's store); without it budgets are recorded only. */
  onBudget?: (grant: {
    sessionId: string;
    bottle: string;
    provider: string;
    tokens: number;
  }) => void | Promise<void>;
  /** Exec-policy rule files of a bottle (check_command). Default: the bottle manifest's `exec_policy.rules`. */
  execRules?: (bottle: string) => string[];
}

export interface SyncResult {
  expired: string[];
  applied: string[];
  reverted: string[];
}

/** The approvals service of one controller (added to its proxy host). */
export interface Approvals {
  readonly service: ProxyService;
  readonly store: ApprovalStore;
  readonly config: ApprovalsConfig;
  /** Denies timed-out proposals, puts approvals in force, reverts expired ones. */
  sync(): Promise<SyncResult>;
  close(): Promise<void>;
}

interface Tracked {
  bottle: string;
  agent: string | undefined;
  base: SessionState;
  /** JSON of the state last put in force. */
  applied: string;
}

const ACTIVE_KINDS = new Set<Change["kind"]>(["route", "provider"]);

/**
 * Creates the approvals service and adds it to `host`: the MCP server on the reserved host, the
 * supervisor of DLP `supervise` holds, the control calls `sync` and `status`, and a poll that
 * picks up decisions other processes wrote to the queue.
 */
export function createApprovals(host: ProxyHost, options: ApprovalsOptions = {}): Approvals {
  const home = options.home ?? join(host.stateDir, "..");
  const config = options.config ?? loadConfig(home);
  const now = options.now ?? Date.now;
  // The queue is opened when this service first files or reads a proposal, not with the service:
  // a controller creates the service for every `bottle run`, and most runs file none (opening it
  // loads and opens a second SQLite database while the sandbox's probe waits). Until then no
  // session of this controller has a proposal (only this service files them), so `sync` and a
  // session's end have nothing to read; the operator's `bottle approvals` expires stale ones.
  let opened: ApprovalStore | undefined;
  const queue = (): ApprovalStore => {
    opened ??= ApprovalStore.open(home, now);
    return opened;
  };
  const sessions = new Map<string, Tracked>();
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;

  function serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = chain.then(work, work);
    chain = next.catch(() => undefined);
    return next;
  }

  function isActive(p: Proposal, t: number): boolean {
    return (
      p.status === "approved" &&
      ACTIVE_KINDS.has(p.change.kind) &&
      p.revertedAt === undefined &&
      (p.until === undefined || Date.parse(p.until) > t)
    );
  }

  async function syncNow(): Promise<SyncResult> {
    if (opened === undefined) return { expired: [], applied: [], reverted: [] };
    const store = opened;
    const result: SyncResult = { expired: store.expirePending(), applied: [], reverted: [] };
    const t = now();
    for (const [sessionId, s] of sessions) {
      const approved = store.list({ status: "approved", sessionId });
      for (const p of approved) {
        if (
          p.revertedAt === undefined &&
          p.until !== undefined &&
          Date.parse(p.until) <= t &&
          ACTIVE_KINDS.has(p.change.kind)
        ) {
          store.markReverted(p.id, "expired");
          result.reverted.push(p.id);
        }
      }
      const active = approved.filter((p) => isActive(p, t));
      const desired = applyGrants(
        s.base,
        active.map((p) => p.change),
        config.providers,
      );
      const json = JSON.stringify(desired);
      if (json !== s.applied) {
        try {
          await host.setCredentials(sessionId, desired.credentials);
          await host.replaceRoutes(sessionId, desired.routes);
          s.applied = json;
        } catch (error) {
          for (const p of active.filter((p) => p.appliedAt === undefined)) {
            store.audit(p.id, "apply_failed", "controller", {
              code: (error as { code?: string }).code ?? "E_INTERNAL",
            });
          }
          continue; // fail closed: the old state stays in force
        }
      }
      for (const p of active) {
        if (p.appliedAt === undefined) {
          store.markApplied(p.id);
          result.applied.push(p.id);
        }
      }
      for (const p of approved) {
        if (p.change.kind !== "budget" || p.appliedAt !== undefined || !options.onBudget) continue;
        try {
          await options.onBudget({
            sessionId,
            bottle: s.bottle,
            provider: p.change.provider,
            tokens: p.change.tokens,
          });
          store.markApplied(p.id);
          result.applied.push(p.id);
        } catch (error) {
          store.audit(p.id, "apply_failed", "controller", {
            code: (error as { code?: string }).code ?? "E_INTERNAL",
          });
        }
      }
    }
    return result;
  }

  const sync = () => serialize(syncNow);

  function currentRoutes(sessionId: string): Route[] {
    const d = host.session(sessionId);
    if (!d) throw new ApprovalsError("E_NOT_FOUND", "this session is not live any more");
    return d.routes;
  }

  function file(ctx: ServiceContext, change: Change, justification: string): Proposal {
    const store = queue();
    const t = now();
    if (store.countSince(ctx.sessionId, t - config.rateLimit.perMs) >= config.rateLimit.proposals) {
      throw new ApprovalsError(
        "E_RATE_LIMITED",
        `too many proposals: at most ${config.rateLimit.proposals} per ${config.rateLimit.perMs / 1000}s for a session`,
        { hint: "wait for the pending ones (proposal_status) before asking again" },
      );
    }
    const widening = wideningOf(change, currentRoutes(ctx.sessionId));
    const p = store.insert({
      sessionId: ctx.sessionId,
      bottle: ctx.bottle,
      ...(ctx.agent === undefined ? {} : { agent: ctx.agent }),
      change,
      justification,
      widening,
      expiresAt: t + (change.kind === "dlp_hold" ? config.holdTimeoutMs : config.timeoutMs),
    });
    if (config.auto === "non-widening" && widening.length === 0 && change.kind !== "dlp_hold") {
      return store.decide(p.id, { approve: true, by: "auto", scope: "auto" }, "controller");
    }
    return p;
  }

  function view(p: Proposal) {
    return {
      id: p.id,
      status: p.status,
      in_force: p.inForce,
      change: p.change,
      widening: p.widening,
      ...(p.scope ? { scope: p.scope } : {}),
      ...(p.until ? { until: p.until } : {}),
      ...(p.reason ? { reason: p.reason } : {}),
      ...(p.status === "pending" ? { decide_by: p.expiresAt } : {}),
    };
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());

  function rulesOf(bottle: string): string[] {
    if (options.execRules) return options.execRules(bottle);
    try {
      const b = resolveBottle(bottle, { home, env: { BOTTLEKIT_HOME: home } });
      return b.config.exec_policy.rules.map((r) => resolvePath(home, r));
    } catch {
      return [];
    }
  }

  function handlers(ctx: ServiceContext): ToolHandlers {
    const mine = (id: string): Proposal => {
      const p = queue().get(id);
      // another session's proposal is answered exactly like one that does not exist
      if (!p || p.sessionId !== ctx.sessionId)
        throw new ApprovalsError("E_NOT_FOUND", `no proposal ${id} for this bottle`);
      return p;
    };
    return {
      async listRoutes() {
        const d = host.session(ctx.sessionId);
        if (!d) throw new ApprovalsError("E_NOT_FOUND", "this session is not live any more");
        return {
          bottle: ctx.bottle,
          routes: d.routes.map((r) => ({
            host: r.host,
            ...(r.port === undefined ? {} : { port: r.port }),
            summary: summarizeRoute(r),
            ...(r.auth ? { credential: r.auth.token_ref } : {}),
            bound_credentials: d.credentials
              .filter((c) => (c.hosts ?? []).some((h) => hostMatches(h, r.host)))
              .map((c) => c.name),
          })),
          note: "no route for a host means 403; ask with propose_route_change",
        };
      },
      async listProviders() {
        const d = host.session(ctx.sessionId);
        const attached = new Map((d?.credentials ?? []).map((c) => [c.name, c.hosts ?? []]));
        return {
          providers: config.providers.map((p) => ({
            name: p.name,
            hosts: p.hosts,
            placeholder: `bottlekit:resolve:env:${p.name}`,
            attached: attached.has(p.name),
            ...(attached.has(p.name) ? { attached_hosts: attached.get(p.name) } : {}),
          })),
        };
      },
      async proposeRouteChange(args) {
        const route = validateRoute(
          args.op === "remove"
            ? {
                host: args.route.host,
                ...(args.route.port === undefined ? {} : { port: args.route.port }),
              }
            : args.route,
        );
        if (
          args.op === "remove" &&
          !currentRoutes(ctx.sessionId).some((r) => routeKey(r) === routeKey(route))
        ) {
          throw new ApprovalsError("E_INVALID_INPUT", `no route for ${routeKey(route)} to remove`);
        }
        if (route.auth) {
          // a route may carry only a credential already bound to its host: anything else is
          // an attachment, asked for with request_provider (checked against the catalogue)
          const d = host.session(ctx.sessionId);
          const ref = route.auth.token_ref;
          const bound =
            d?.credentials.some(
              (c) => c.name === ref && (c.hosts ?? []).some((h) => hostMatches(h, route.host)),
            ) || d?.routes.some((r) => r.auth?.token_ref === ref && r.host === route.host);
          if (!bound) {
            throw new ApprovalsError(
              "E_INVALID_INPUT",
              `proposal: route.auth: credential ${ref} is not bound to ${route.host}`,
              {
                hint: "ask for a host-managed credential with request_provider (list_providers shows them)",
              },
            );
          }
        }
        const input =
          args.op === "remove"
            ? { host: route.host, ...(route.port === undefined ? {} : { port: route.port }) }
            : args.route;
        const p = file(
          ctx,
          { kind: "route", op: args.op, route: input as RouteInput },
          args.justification,
        );
        return view(p);
      },
      async requestProvider(args) {
        const entry = config.providers.find((p) => p.name === args.provider);
        if (!entry) {
          throw new ApprovalsError(
            "E_NOT_FOUND",
            `no host-managed credential ${JSON.stringify(args.provider)}`,
            {
              hint: "list_providers shows the ones this host can attach",
            },
          );
        }
        const hostName = args.host.toLowerCase();
        if (hostName.startsWith("*.") || !entry.hosts.some((h) => hostMatches(h, hostName))) {
          throw new ApprovalsError(
            "E_INVALID_INPUT",
            `${entry.name} is not bound to ${args.host}: it may only be sent to ${entry.hosts.join(", ")}`,
            { hint: "request it for one of those hosts" },
          );
        }
        validateRoute({ host: hostName });
        return view(
          file(ctx, { kind: "provider", provider: entry.name, host: hostName }, args.justification),
        );
      },
      async requestBudget(args) {
        validateBudget(args.provider, args.tokens);
        return view(
          file(
            ctx,
            { kind: "budget", provider: args.provider, tokens: args.tokens },
            args.justification,
          ),
        );
      },
      async checkCommand(args) {
        const rules = rulesOf(ctx.bottle);
        if (rules.length === 0) {
          return {
            decision: "unchecked",
            reason:
              "this bottle has no exec_policy.rules: commands are not checked (the sandbox still holds)",
          };
        }
        const { checkShell, loadPolicyFiles } = await import("@bottlekit/execpolicy");
        const loaded = await loadPolicyFiles(rules);
        if (loaded.errors.length > 0) {
          return {
            decision: "forbidden",
            reason: "the bottle's exec policy does not load; every command is refused",
          };
        }
        const r = await checkShell(loaded.policy, args.script);
        const why = r.matchedRules.map((m) => m.justification).filter(Boolean);
        return {
          decision: r.decision,
          reason:
            why[0] ??
            (r.decision === "allow"
              ? "allowed by the policy"
              : `no rule allows it (${r.decision})`),
          commands: r.commands.map((c) => ({ argv: c.argv, decision: c.decision })),
          ...(r.notes.length > 0 ? { notes: r.notes } : {}),
        };
      },
      async proposalStatus(args) {
        let p = mine(args.id);
        const until = Date.now() + Math.min(60, Math.max(0, args.wait_seconds ?? 0)) * 1000;
        const settled = (q: Proposal) =>
          q.status !== "pending" &&
          (q.status !== "approved" ||
            q.inForce ||
            !ACTIVE_KINDS.has(q.change.kind) ||
            q.revertedAt !== undefined);
        while (!settled(p) && Date.now() < until && !closed) {
          await sleep(100);
          if (p.status === "approved") await sync();
          p = mine(args.id);
        }
        return {
          ...view(p),
          ...(settled(p) ? {} : { timed_out: args.wait_seconds ? true : undefined }),
        };
      },
    };
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: ServiceContext,
  ): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/mcp") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not found", mcp: APPROVALS_URL }));
      req.resume();
      return;
    }
    // The MCP SDK (and its schema and HTTP stack) loads with the first request, not with the
    // service: an embedded controller creates the service for every `bottle run`, and most runs
    // never call a tool.
    const [{ buildMcpServer }, { StreamableHTTPServerTransport }] = await Promise.all([
      import("./tools.ts"),
      import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    ]);
    if (res.destroyed) return; // the agent went away while the SDK loaded
    const server = buildMcpServer(handlers(ctx));
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  }

  async function supervise(r: SupervisedRequest): Promise<boolean> {
    const ctx: ServiceContext = {
      sessionId: r.sessionId,
      bottle: r.bottle,
      ...(r.agent === undefined ? {} : { agent: r.agent }),
      host: r.host,
      port: r.port,
    };
    let p: Proposal;
    try {
      p = file(
        ctx,
        {
          kind: "dlp_hold",
          host: r.host,
          port: r.port,
          method: r.method,
          path: r.path,
          findings: r.findings,
        },
        "held by the route's DLP action `supervise`",
      );
    } catch {
      return false; // rate limited or the session went away: refused
    }
    const store = queue();
    while (!closed) {
      const q = store.get(p.id);
      if (!q || q.status === "denied" || q.status === "expired") return false;
      if (q.status === "approved") {
        store.markApplied(q.id);
        return true;
      }
      if (now() >= Date.parse(q.expiresAt)) {
        store.expirePending();
        continue;
      }
      await sleep(100);
    }
    return false;
  }

  const service: ProxyService = {
    name: "approvals",
    hosts: [APPROVALS_HOST],
    refusalHint: `This bottle can ask for it: call propose_route_change on the bottlekit MCP server (${APPROVALS_URL}) with a justification, then proposal_status.`,
    handle,
    supervise,
    async control(call) {
      if (call === "sync") return sync();
      throw new ApprovalsError(
        "E_INVALID_INPUT",
        `approvals: unknown call ${JSON.stringify(call)}`,
        { hint: "calls: sync" },
      );
    },
    sessionOpened(d) {
      const base: SessionState = { routes: d.routes, credentials: d.credentials };
      sessions.set(d.sessionId, {
        bottle: d.bottle,
        agent: d.agent,
        base,
        applied: JSON.stringify(base),
      });
    },
    sessionClosed(sessionId) {
      sessions.delete(sessionId);
      if (opened === undefined) return;
      const store = opened;
      for (const p of store.list({ sessionId })) {
        if (p.status === "pending") {
          try {
            store.decide(
              p.id,
              { approve: false, by: "session-ended", reason: "the session ended" },
              "controller",
            );
          } catch {
            // decided meanwhile
          }
        } else if (p.status === "approved") store.markReverted(p.id, "session ended");
      }
    },
  };
  host.addService(service);
  const timer = setInterval(() => {
    if (!closed) void sync().catch(() => undefined);
  }, options.pollMs ?? 200);
  timer.unref();
  return {
    service,
    get store() {
      return queue();
    },
    config,
    sync,
    async close() {
      closed = true;
      clearInterval(timer);
      await chain.catch(() => undefined);
      opened?.close();
    },
  };
}
