import type { Route } from "@bottlekit/egress-dlp";
import { classifyEnv } from "./env.ts";
import { type KeyPath, pathToString } from "./frontmatter.ts";
import { routeKeyOf } from "./validate.ts";

/**
 * Merge rules (one set, applied the same way for one parent or many):
 *
 * 1. Parents are folded left to right (each one already resolved), then the child is applied.
 * 2. Scalars (`cutoff`, `supervise`, `egress.log`, `model`, budget fields…): the later one wins.
 * 3. Maps (`env`, `budget`, `sandbox`, `exec_policy`, `git_identity` and maps inside them) merge
 *    by key, recursively; the later one wins per key. An `env` entry is one value.
 * 4. Lists of strings (`exec_policy.rules`, `sandbox.filesystem.*`, `skills`) are unions in first-seen
 *    order; extending never drops an inherited rule file or path.
 * 5. `egress.routes` merge by host (and port, when given): a later route for the same host replaces
 *    the earlier one whole (its matches, auth and dlp); other hosts are inherited.
 *    `egress.inherit_routes: false` starts a bottle from no inherited routes.
 * 6. `agent_provider` is one choice and is replaced whole: credentials never carry over from a
 *    parent's provider to another provider.
 * 7. `extends` itself is not inherited.
 */

/** Where a value came from. `default` means no manifest set it. */
export interface SourceRef {
  readonly kind: "bottle" | "agent" | "default";
  /** Bottle or agent name; empty for defaults. */
  readonly name: string;
  /** File that set the value; empty for defaults. */
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** Provenance of one key of the effective config. */
export interface Provenance {
  /** Key path in the effective config, like `env.API_URL` or `egress.routes["api.github.com"]`. */
  readonly path: string;
  /** The file (and line:col) whose value is in effect. */
  readonly source: SourceRef;
  /** Earlier values of the same key that the winning source replaced, nearest first. */
  readonly overridden: readonly SourceRef[];
}

/** Internal merged state: values plus provenance per leaf path. Routes are kept keyed by host. */
export interface Acc {
  value: Record<string, unknown>;
  prov: Map<string, Provenance>;
}

export function emptyAcc(): Acc {
  return { value: {}, prov: new Map() };
}

/** Path of a list element or keyed route: always `list["element"]`, never confused with a map key. */
export function elementPath(list: KeyPath, element: string): string {
  return `${pathToString(list)}[${JSON.stringify(element)}]`;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Map);
}

/** Sets a key without ever touching prototypes (`__proto__` is a valid env name). */
function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else obj[key] = value;
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Values stored whole, with provenance on the key itself. */
function isAtomic(path: KeyPath): boolean {
  return (
    (path.length === 1 && path[0] === "agent_provider") || (path.length === 2 && path[0] === "env")
  );
}

const SKIP_TOP = new Set(["extends", "description", "bottle", "name", "tools", "color"]);

/**
 * Turns one validated file's frontmatter into an Acc: env entries classified, routes keyed by
 * host, and every leaf's provenance pointing at its line and column in that file.
 */
export function layerToAcc(
  front: Readonly<Record<string, unknown>>,
  ref: { kind: "bottle" | "agent"; name: string; file: string },
  locate: (path: KeyPath, at?: "key" | "value") => { line: number; col: number },
): Acc {
  const acc = emptyAcc();
  const record = (path: string, raw: KeyPath) => {
    acc.prov.set(path, { path, source: { ...ref, ...locate(raw, "key") }, overridden: [] });
  };
  const walk = (src: Record<string, unknown>, dst: Record<string, unknown>, path: KeyPath) => {
    for (const key of Object.keys(src)) {
      if (path.length === 0 && SKIP_TOP.has(key)) continue;
      if (path.length === 1 && path[0] === "egress" && key === "inherit_routes") continue;
      const v = src[key];
      if (v === undefined) continue;
      const p = [...path, key];
      if (path.length === 1 && path[0] === "egress" && key === "routes") {
        const routes = new Map<string, Route>();
        (v as Route[]).forEach((route, i) => {
          const rk = routeKeyOf(route.host, route.port);
          routes.set(rk, route);
          record(elementPath(p, rk), [...p, i]);
        });
        put(dst, key, routes);
      } else if (path.length === 1 && path[0] === "env") {
        put(dst, key, classifyEnv(v as string | number | boolean));
        record(pathToString(p), p);
      } else if (Array.isArray(v)) {
        const list: string[] = [];
        const have = new Set<string>();
        v.forEach((el, i) => {
          const s = String(el);
          if (!have.has(s)) {
            have.add(s);
            list.push(s);
          }
          record(elementPath(p, s), [...p, i]);
        });
        put(dst, key, list);
      } else if (isPlain(v) && !isAtomic(p)) {
        const child: Record<string, unknown> = {};
        put(dst, key, child);
        walk(v, child, p);
      } else {
        put(dst, key, v);
        record(pathToString(p), p);
      }
    }
  };
  walk(front as Record<string, unknown>, acc.value, []);
  return acc;
}

function sameRef(a: SourceRef, b: SourceRef): boolean {
  return a.file === b.file && a.line === b.line && a.col === b.col && a.kind === b.kind;
}

/** Folds `source` into `target` following the merge rules above. Linear in the size of `source`. */
export function mergeAcc(target: Acc, source: Acc): void {
  const record = (path: string) => {
    const sp = source.prov.get(path);
    if (!sp) return;
    const tp = target.prov.get(path);
    const overridden: SourceRef[] = [];
    const add = (r: SourceRef) => {
      if (!sameRef(r, sp.source) && !overridden.some((o) => sameRef(o, r))) overridden.push(r);
    };
    sp.overridden.forEach(add);
    if (tp) {
      add(tp.source);
      tp.overridden.forEach(add);
    }
    target.prov.set(path, { path, source: sp.source, overridden });
  };
  const walk = (s: Record<string, unknown>, t: Record<string, unknown>, path: KeyPath) => {
    for (const key of Object.keys(s)) {
      const sv = s[key];
      const p = [...path, key];
      const tv = own(t, key);
      if (sv instanceof Map) {
        const m = tv instanceof Map ? tv : new Map<string, unknown>();
        put(t, key, m);
        for (const [rk, route] of sv) {
          m.set(rk, route);
          record(elementPath(p, rk));
        }
      } else if (Array.isArray(sv)) {
        const list = Array.isArray(tv) ? (tv as unknown[]) : [];
        put(t, key, list);
        const have = new Set(list);
        for (const el of sv) {
          if (!have.has(el)) {
            have.add(el);
            list.push(el);
          }
          record(elementPath(p, String(el)));
        }
      } else if (isPlain(sv) && !isAtomic(p)) {
        const obj = isPlain(tv) ? tv : {};
        put(t, key, obj);
        walk(sv, obj, p);
      } else {
        put(t, key, sv);
        record(pathToString(p));
      }
    }
  };
  walk(source.value, target.value, []);
}

/** Drops inherited routes (for `egress.inherit_routes: false`); returns the dropped route keys. */
export function dropRoutes(acc: Acc): string[] {
  const egress = own(acc.value, "egress");
  if (!isPlain(egress)) return [];
  const routes = own(egress, "routes");
  const dropped = routes instanceof Map ? [...routes.keys()].map(String) : [];
  put(egress, "routes", new Map());
  const prefix = pathToString(["egress", "routes"]);
  for (const key of [...acc.prov.keys()]) {
    if (key.startsWith(`${prefix}[`)) acc.prov.delete(key);
  }
  return dropped;
}

/** Routes currently in an Acc, keyed by host, in merge order. */
export function routesOf(acc: Acc): Map<string, Route> {
  const egress = own(acc.value, "egress");
  const routes = isPlain(egress) ? own(egress, "routes") : undefined;
  return routes instanceof Map ? (routes as Map<string, Route>) : new Map();
}

/** Sets a default value (with `default` provenance) when no manifest set the key. */
export function applyDefault(acc: Acc, path: readonly string[], value: unknown): void {
  let obj = acc.value;
  for (const seg of path.slice(0, -1)) {
    const next = own(obj, seg);
    if (isPlain(next)) obj = next;
    else {
      const created: Record<string, unknown> = {};
      put(obj, seg, created);
      obj = created;
    }
  }
  const last = path[path.length - 1] as string;
  if (own(obj, last) !== undefined) return;
  put(obj, last, value);
  if (Array.isArray(value) || (isPlain(value) && Object.keys(value).length === 0)) return;
  const p = pathToString(path);
  acc.prov.set(p, {
    path: p,
    source: { kind: "default", name: "", file: "", line: 0, col: 0 },
    overridden: [],
  });
}
