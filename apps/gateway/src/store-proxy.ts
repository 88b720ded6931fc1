import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type {
  CutoffEvent,
  CutoffListener,
  CutoffSubscription,
  OpenStoreOptions,
  Store,
} from "@bottlekit/budget-store";
import { GatewayError } from "./errors.ts";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** An error from the worker, rebuilt with its name, code and hint (callers branch on `code`). */
function rebuild(e: { name: string; message: string; code?: string; hint?: string }): Error {
  const err = new Error(e.message) as Error & { code?: string; hint?: string };
  err.name = e.name;
  if (e.code !== undefined) err.code = e.code;
  if (e.hint !== undefined) err.hint = e.hint;
  return err;
}

/** How to start the worker: the built `.js` next to this module, or the `.ts` source through tsx. */
function workerSpec(): { url: URL; execArgv: string[] } {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return { url: new URL("./store-worker.js", here), execArgv: [] };
  // Source mode (tests, bench, demo): register tsx inside the worker, then load the TS entry with
  // workspace packages resolved to their sources.
  // require.resolve finds the CommonJS build; its ESM twin sits next to it.
  const cjs = createRequire(here).resolve("tsx/esm/api");
  const api = pathToFileURL(cjs.replace(/\.cjs$/, ".mjs")).href;
  const entry = new URL("./store-worker.ts", here).href;
  const boot = `const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(entry)});`;
  return {
    url: new URL(`data:text/javascript,${encodeURIComponent(boot)}`),
    execArgv: ["--conditions=@bottlekit/source"],
  };
}

/**
 * Opens the budget store in a worker thread and returns a `Store` that forwards every call to it.
 * The gateway's event loop then never runs synchronous SQLite: a call costs one message each way
 * (structured clone of a small object), and reserve/settle run on another core. If the worker
 * dies, every pending and later call rejects, so the gateway refuses calls (fail closed).
 */
export async function openStoreInWorker(
  url: string,
  options: Pick<OpenStoreOptions, "home" | "groupCommitMs" | "walAutocheckpointPages"> = {},
): Promise<Store> {
  const spec = workerSpec();
  // Loaded here, not with the module: a gateway that keeps its store in-thread (the default, and
  // the embedded controller of `bottle run`) never loads Node's worker_threads (~1 ms).
  const { Worker } = await import("node:worker_threads");
  const worker = new Worker(spec.url, {
    workerData: { url, options },
    execArgv: spec.execArgv,
  });
  const pending = new Map<number, Pending>();
  // Cutoff events: the worker subscribes and posts each event; the listener stays on this side.
  const cutoffListeners = new Map<number, CutoffListener>();
  let nextId = 1;
  let dead: Error | undefined;
  const fail = (e: Error): void => {
    dead ??= e;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  const { backend, owner } = await new Promise<{ backend: string; owner: string }>(
    (resolve, reject) => {
      const onMessage = (m: {
        ready?: boolean;
        backend?: string;
        owner?: string;
        error?: { name: string; message: string; code?: string; hint?: string };
      }) => {
        if (m.ready === true) resolve({ backend: m.backend ?? "sqlite", owner: m.owner ?? "" });
        else if (m.ready === false && m.error) reject(rebuild(m.error));
      };
      worker.once("message", onMessage);
      worker.once("error", reject);
    },
  );
  worker.on(
    "message",
    (m: {
      id?: number;
      ok?: boolean;
      value?: unknown;
      error?: { name: string; message: string; code?: string; hint?: string };
      cutoff?: { sub: number; event: CutoffEvent };
    }) => {
      if (m.cutoff !== undefined) {
        const listener = cutoffListeners.get(m.cutoff.sub);
        try {
          listener?.(m.cutoff.event);
        } catch {
          // a listener that throws does not affect others (the store's contract)
        }
        return;
      }
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(rebuild(m.error ?? { name: "Error", message: "store call failed" }));
    },
  );
  worker.on("error", (e) => fail(e instanceof Error ? e : new Error(String(e))));
  worker.on("exit", (code) =>
    fail(new GatewayError("E_STORE", `the budget store worker exited (code ${code})`)),
  );

  const call = (method: string, args: unknown[]): Promise<never> => {
    if (dead !== undefined) return Promise.reject(dead);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, args });
    });
  };
  // Every Store method is forwarded by name (the worker answers "no store method" for a name
  // the store lacks), so methods the store gains need no change here.
  const fixed: Record<string, unknown> = { backend, owner };
  const forwarders = new Map<string, (...args: unknown[]) => Promise<never>>();
  const proxy = new Proxy(fixed, {
    get(target, prop) {
      if (typeof prop !== "string") return undefined;
      if (prop in target) return target[prop];
      // Not a thenable: `await store` must not look for a `then` method in the worker.
      if (prop === "then") return undefined;
      let f = forwarders.get(prop);
      if (f === undefined) {
        f = (...args: unknown[]) => call(prop, args);
        forwarders.set(prop, f);
      }
      return f;
    },
  });
  let nextSub = 1;
  fixed["onCutoff"] = (listener: CutoffListener): CutoffSubscription => {
    const subId = nextSub++;
    cutoffListeners.set(subId, listener);
    const ready = call("subscribeCutoffs", [subId]) as Promise<void>;
    ready.catch(() => cutoffListeners.delete(subId));
    return {
      ready,
      close() {
        if (!cutoffListeners.delete(subId)) return;
        call("unsubscribeCutoffs", [subId]).catch(() => {});
      },
    };
  };
  fixed["close"] = async () => {
    if (dead === undefined) {
      try {
        await call("close", []);
      } catch {
        // already gone
      }
    }
    await worker.terminate();
  };
  return proxy as unknown as Store;
}
