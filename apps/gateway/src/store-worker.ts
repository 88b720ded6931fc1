// Worker-thread entry: owns the budget store (synchronous SQLite underneath) so that a slow disk
// or another process's write lock never stalls the gateway's event loop. Requests arrive as
// { id, method, args } and are answered as { id, ok, value | error }.
import { parentPort, workerData } from "node:worker_threads";
import { type OpenStoreOptions, openStore, type Store } from "@bottlekit/budget-store";

interface Request {
  id: number;
  method: string;
  args: unknown[];
}

function serialize(error: unknown): {
  name: string;
  message: string;
  code?: string;
  hint?: string;
} {
  if (error instanceof Error) {
    const e = error as Error & { code?: unknown; hint?: unknown };
    return {
      name: e.name,
      message: e.message,
      ...(typeof e.code === "string" ? { code: e.code } : {}),
      ...(typeof e.hint === "string" ? { hint: e.hint } : {}),
    };
  }
  return { name: "Error", message: String(error) };
}

const port = parentPort;
if (port === null) throw new Error("store-worker must run in a worker thread");
const data = workerData as { url: string; options: OpenStoreOptions };
let store: Store;
try {
  store = await openStore(data.url, data.options);
  port.postMessage({ ready: true, backend: store.backend, owner: store.owner });
} catch (error) {
  port.postMessage({ ready: false, error: serialize(error) });
  process.exit(1);
}
// Cutoff subscriptions made for the gateway thread: each event is posted as { cutoff }.
const subscriptions = new Map<number, { close(): void }>();
function subscribeCutoffs(subId: number): Promise<void> {
  const sub = store.onCutoff((event) => port?.postMessage({ cutoff: { sub: subId, event } }));
  subscriptions.set(subId, sub);
  return sub.ready;
}
function unsubscribeCutoffs(subId: number): Promise<void> {
  subscriptions.get(subId)?.close();
  subscriptions.delete(subId);
  return Promise.resolve();
}

port.on("message", (req: Request) => {
  if (req.method === "subscribeCutoffs" || req.method === "unsubscribeCutoffs") {
    const op = req.method === "subscribeCutoffs" ? subscribeCutoffs : unsubscribeCutoffs;
    op(req.args[0] as number).then(
      () => port.postMessage({ id: req.id, ok: true, value: undefined }),
      (error: unknown) => port.postMessage({ id: req.id, ok: false, error: serialize(error) }),
    );
    return;
  }
  const fn = (store as unknown as Record<string, unknown>)[req.method];
  if (typeof fn !== "function") {
    port.postMessage({
      id: req.id,
      ok: false,
      error: { name: "Error", message: `no store method ${req.method}` },
    });
    return;
  }
  (fn as (...a: unknown[]) => Promise<unknown>).apply(store, req.args).then(
    (value) => {
      port.postMessage({ id: req.id, ok: true, value });
      if (req.method === "close") port.close();
    },
    (error: unknown) => port.postMessage({ id: req.id, ok: false, error: serialize(error) }),
  );
});
