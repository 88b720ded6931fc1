/**
 * Tree-walking evaluator for the Starlark subset. Deterministic and bounded: a step budget stops
 * runaway loops and recursion is refused (as in Starlark), so a hostile rules file cannot hang a load.
 */
import type { CompClause, Expr, Param, Pos, Stmt, Target } from "./parser.ts";

export class Tuple {
  constructor(readonly items: readonly Value[]) {}
}

export interface CallContext {
  pos: Pos;
  /** Calls a Starlark callable (e.g. the `key` of `sorted`). */
  invoke: (fn: Value, args: Value[]) => Value;
}

export class Builtin {
  constructor(
    readonly name: string,
    readonly fn: (args: Value[], kwargs: [string, Value][], ctx: CallContext) => Value,
    /** False: keyword arguments are refused before `fn` runs (Starlark rejects unknown ones). */
    readonly acceptsKwargs = false,
    /** More positional arguments than this are refused before `fn` runs (never silently ignored). */
    readonly maxArgs = Number.POSITIVE_INFINITY,
  ) {}
}

/** Positional arity of the standard builtins and methods (those that take a fixed number). */
const MAX_ARGS: Readonly<Record<string, number>> = {
  len: 1,
  str: 1,
  list: 1,
  type: 1,
  bool: 1,
  int: 1,
  tuple: 1,
  dict: 1,
  reversed: 1,
  any: 1,
  all: 1,
  repr: 1,
  enumerate: 2,
  sorted: 1,
  range: 2,
  split: 2,
  join: 1,
  strip: 1,
  lstrip: 1,
  rstrip: 1,
  lower: 0,
  upper: 0,
  startswith: 1,
  endswith: 1,
  replace: 2,
  append: 1,
  extend: 1,
  index: 1,
  items: 0,
  keys: 0,
  values: 0,
  get: 2,
};

/** The same builtin with its arity from `MAX_ARGS`. */
function withArity(b: Builtin): Builtin {
  const max = MAX_ARGS[b.name];
  return max === undefined ? b : new Builtin(b.name, b.fn, b.acceptsKwargs, max);
}

/** A `def` or `lambda`. It sees the variables of the scope it was created in, by reference (as in Starlark). */
export class UserFunction {
  constructor(
    /** The def's name, or `lambda`. */
    readonly name: string,
    /** `module.name`, as Starlark prints a function (the module is the policy file's path). */
    readonly qualifiedName: string,
    readonly params: readonly Param[],
    readonly body: { readonly block: Stmt[] } | { readonly expr: Expr },
    readonly defaults: (Value | undefined)[],
    /** The enclosing function's scope; undefined at module level (globals are looked up anyway). */
    readonly closure: Map<string, Value> | undefined,
  ) {}
}

export type Value =
  | string
  | number
  | boolean
  | null
  | Value[]
  | Tuple
  | Map<Value, Value>
  | Builtin
  | UserFunction;

export class StarlarkRuntimeError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

const MAX_STEPS = 2_000_000;

export function typeName(v: Value): string {
  if (v === null) return "NoneType";
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "int";
  if (typeof v === "boolean") return "bool";
  if (Array.isArray(v)) return "list";
  if (v instanceof Tuple) return "tuple";
  if (v instanceof Map) return "dict";
  return "function";
}

export function repr(v: Value): string {
  if (v === null) return "None";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return `[${v.map(repr).join(", ")}]`;
  if (v instanceof Tuple)
    return `(${v.items.map(repr).join(", ")}${v.items.length === 1 ? "," : ""})`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${repr(k)}: ${repr(x)}`).join(", ")}}`;
  return v instanceof Builtin ? v.name : v.qualifiedName;
}

function str(v: Value): string {
  return typeof v === "string" ? v : repr(v);
}

class ReturnSignal {
  constructor(readonly value: Value) {}
}
const BREAK = Symbol("break");
const CONTINUE = Symbol("continue");

function truthy(v: Value): boolean {
  if (v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Tuple) return v.items.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  const la = Array.isArray(a) ? a : a instanceof Tuple ? a.items : undefined;
  const lb = Array.isArray(b) ? b : b instanceof Tuple ? b.items : undefined;
  if (la && lb && Array.isArray(a) === Array.isArray(b)) {
    return la.length === lb.length && la.every((x, i) => equal(x, lb[i] as Value));
  }
  return false;
}

export class Interpreter {
  private steps = 0;
  /** Lists and dicts being iterated: Starlark forbids mutating them meanwhile. */
  readonly iterating = new Set<Value>();

  checkNotIterating(v: Value, p: Pos): void {
    if (this.iterating.has(v))
      throw new StarlarkRuntimeError(
        `cannot mutate a ${typeName(v)} while iterating over it`,
        p.line,
        p.col,
      );
  }
  private readonly stack: UserFunction[] = [];
  readonly globals = new Map<string, Value>();
  /** Enclosing scope of a function's local scope (closures); globals come last, for every scope. */
  private readonly parents = new WeakMap<Map<string, Value>, Map<string, Value>>();

  /** `moduleName` (the policy file's path) prefixes user functions when printed, as in Codex. */
  constructor(
    builtins: Builtin[],
    private readonly moduleName = "",
  ) {
    for (const b of [...standardBuiltins(), ...builtins]) this.globals.set(b.name, b);
  }

  private makeFunction(
    name: string,
    params: readonly Param[],
    body: UserFunction["body"],
    env: Map<string, Value>,
  ): UserFunction {
    const defaults = params.map((p) => (p.default ? this.eval(p.default, env) : undefined));
    const qualified = this.moduleName ? `${this.moduleName}.${name}` : name;
    const closure = env === this.globals ? undefined : env;
    return new UserFunction(name, qualified, params, body, defaults, closure);
  }

  run(module: Stmt[]): void {
    const signal = this.execBlock(module, this.globals, false);
    if (signal !== undefined) {
      const s = module.find((x) => x.t === "return" || x.t === "break" || x.t === "continue");
      throw new StarlarkRuntimeError(
        "'return', 'break' and 'continue' are only valid inside functions and loops",
        s?.line ?? 1,
        s?.col ?? 1,
      );
    }
  }

  private tick(p: Pos): void {
    if (++this.steps > MAX_STEPS)
      throw new StarlarkRuntimeError(
        "evaluation step budget exceeded (is there a huge loop?)",
        p.line,
        p.col,
      );
  }

  private execBlock(
    body: Stmt[],
    env: Map<string, Value>,
    inLoop: boolean,
  ): ReturnSignal | typeof BREAK | typeof CONTINUE | undefined {
    for (const s of body) {
      const r = this.exec(s, env, inLoop);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private exec(
    s: Stmt,
    env: Map<string, Value>,
    inLoop: boolean,
  ): ReturnSignal | typeof BREAK | typeof CONTINUE | undefined {
    this.tick(s);
    switch (s.t) {
      case "expr":
        this.eval(s.expr, env);
        return undefined;
      case "assign": {
        let value = this.eval(s.value, env);
        if (s.op === "+=") {
          const target = s.target;
          const current =
            target.t === "index"
              ? this.eval(target, env)
              : this.lookup((target as { name: string }).name, env, target);
          if (Array.isArray(current) && Array.isArray(value)) {
            appendAll(current, value);
            value = current;
          } else value = this.binary("+", current, value, s);
        }
        this.assign(s.target, value, env);
        return undefined;
      }
      case "for": {
        const iterated = this.eval(s.iter, env);
        const iter = this.iterable(iterated, s.iter);
        this.iterating.add(iterated);
        try {
          for (const item of [...iter]) {
            this.assign(s.target, item, env);
            const r = this.execBlock(s.body, env, true);
            if (r === BREAK) break;
            if (r === CONTINUE) continue;
            if (r !== undefined) return r;
          }
        } finally {
          this.iterating.delete(iterated);
        }
        return undefined;
      }
      case "if":
        return this.execBlock(truthy(this.eval(s.cond, env)) ? s.body : s.orelse, env, inLoop);
      case "def":
        env.set(s.name, this.makeFunction(s.name, s.params, { block: s.body }, env));
        return undefined;
      case "return":
        if (env === this.globals)
          throw new StarlarkRuntimeError("'return' outside a function", s.line, s.col);
        return new ReturnSignal(s.value ? this.eval(s.value, env) : null);
      case "pass":
        return undefined;
      case "break":
      case "continue":
        if (!inLoop) throw new StarlarkRuntimeError(`'${s.t}' outside a loop`, s.line, s.col);
        return s.t === "break" ? BREAK : CONTINUE;
    }
  }

  private assign(target: Target, value: Value, env: Map<string, Value>): void {
    if (target.t === "name") {
      env.set(target.name, value);
      return;
    }
    if (target.t === "index") {
      const obj = this.eval(target.obj, env);
      const key = this.eval(target.index, env);
      if (obj instanceof Map) {
        if (typeof key === "object" && key !== null)
          throw new StarlarkRuntimeError(
            `unhashable key type ${typeName(key)}`,
            target.line,
            target.col,
          );
        this.checkNotIterating(obj, target);
        obj.set(key, value);
        return;
      }
      if (Array.isArray(obj) && typeof key === "number") {
        const i = key < 0 ? obj.length + key : key;
        if (i < 0 || i >= obj.length)
          throw new StarlarkRuntimeError(`index ${key} out of range`, target.line, target.col);
        obj[i] = value;
        return;
      }
      throw new StarlarkRuntimeError(
        `cannot assign to an element of ${typeName(obj)}`,
        target.line,
        target.col,
      );
    }
    const items = Array.isArray(value) ? value : value instanceof Tuple ? value.items : undefined;
    if (!items || items.length !== target.items.length) {
      throw new StarlarkRuntimeError(
        `cannot unpack ${typeName(value)} into ${target.items.length} variables`,
        target.line,
        target.col,
      );
    }
    for (const [i, t] of target.items.entries()) this.assign(t, items[i] as Value, env);
  }

  private lookup(name: string, env: Map<string, Value>, p: Pos): Value {
    for (let scope: Map<string, Value> | undefined = env; scope; scope = this.parents.get(scope)) {
      if (scope.has(name)) return scope.get(name) as Value;
    }
    if (this.globals.has(name)) return this.globals.get(name) as Value;
    throw new StarlarkRuntimeError(`variable '${name}' is not defined`, p.line, p.col);
  }

  private iterable(v: Value, p: Pos): readonly Value[] {
    if (Array.isArray(v)) return v;
    if (v instanceof Tuple) return v.items;
    if (v instanceof Map) return [...v.keys()];
    throw new StarlarkRuntimeError(`${typeName(v)} is not iterable`, p.line, p.col);
  }

  eval(e: Expr, env: Map<string, Value>): Value {
    this.tick(e);
    switch (e.t) {
      case "str":
        return e.v;
      case "int":
        return e.v;
      case "fstr":
        return e.parts.map((p) => (typeof p === "string" ? p : str(this.eval(p, env)))).join("");
      case "name":
        if (e.name === "True") return true;
        if (e.name === "False") return false;
        if (e.name === "None") return null;
        return this.lookup(e.name, env, e);
      case "list":
        return e.items.map((x) => this.eval(x, env));
      case "tuple":
        return new Tuple(e.items.map((x) => this.eval(x, env)));
      case "dict": {
        const m = new Map<Value, Value>();
        for (const [k, v] of e.entries) {
          const key = this.eval(k, env);
          if (typeof key === "object" && key !== null)
            throw new StarlarkRuntimeError(`unhashable key type ${typeName(key)}`, k.line, k.col);
          m.set(key, this.eval(v, env));
        }
        return m;
      }
      case "lambda":
        return this.makeFunction("lambda", e.params, { expr: e.body }, env);
      case "comp": {
        const out: Value[] = [];
        const scope = new Map(env);
        const parent = this.parents.get(env);
        if (parent) this.parents.set(scope, parent);
        this.comprehension(e.clauses, 0, e.elt, scope, out);
        return out;
      }
      case "call":
        return this.call(e, env);
      case "slice": {
        const obj = this.eval(e.obj, env);
        const bound = (x: Expr | undefined, dflt: number): number => {
          if (x === undefined) return dflt;
          const v = this.eval(x, env);
          if (typeof v !== "number")
            throw new StarlarkRuntimeError("slice bounds must be ints", x.line, x.col);
          return v;
        };
        const seq = Array.isArray(obj)
          ? obj
          : obj instanceof Tuple
            ? obj.items
            : typeof obj === "string"
              ? obj
              : undefined;
        if (seq === undefined)
          throw new StarlarkRuntimeError(`${typeName(obj)} cannot be sliced`, e.line, e.col);
        const n = seq.length;
        const clamp = (i: number) => Math.min(n, Math.max(0, i < 0 ? n + i : i));
        const from = clamp(bound(e.start, 0));
        const to = clamp(bound(e.end, n));
        if (typeof seq === "string") return seq.slice(from, to);
        const part = seq.slice(from, to);
        return obj instanceof Tuple ? new Tuple(part) : part;
      }
      case "attr":
        return boundMethod(this.eval(e.obj, env), e.name, e, (v) => this.checkNotIterating(v, e));
      case "index": {
        const obj = this.eval(e.obj, env);
        const idx = this.eval(e.index, env);
        if (obj instanceof Map) {
          if (!obj.has(idx))
            throw new StarlarkRuntimeError(`key ${repr(idx)} not found`, e.line, e.col);
          return obj.get(idx) as Value;
        }
        const seq = Array.isArray(obj)
          ? obj
          : obj instanceof Tuple
            ? obj.items
            : typeof obj === "string"
              ? [...obj]
              : undefined;
        if (!seq)
          throw new StarlarkRuntimeError(`${typeName(obj)} is not indexable`, e.line, e.col);
        if (typeof idx !== "number")
          throw new StarlarkRuntimeError("index must be an int", e.index.line, e.index.col);
        const i = idx < 0 ? seq.length + idx : idx;
        if (i < 0 || i >= seq.length)
          throw new StarlarkRuntimeError(`index ${idx} out of range`, e.line, e.col);
        return seq[i] as Value;
      }
      case "unary": {
        const v = this.eval(e.operand, env);
        if (e.op === "not") return !truthy(v);
        if (typeof v !== "number")
          throw new StarlarkRuntimeError(
            `unary ${e.op} needs an int, got ${typeName(v)}`,
            e.line,
            e.col,
          );
        return e.op === "-" ? -v : v;
      }
      case "cond":
        return truthy(this.eval(e.test, env)) ? this.eval(e.ifTrue, env) : this.eval(e.orelse, env);
      case "bin": {
        if (e.op === "and") {
          const l = this.eval(e.left, env);
          return truthy(l) ? this.eval(e.right, env) : l;
        }
        if (e.op === "or") {
          const l = this.eval(e.left, env);
          return truthy(l) ? l : this.eval(e.right, env);
        }
        return this.binary(e.op, this.eval(e.left, env), this.eval(e.right, env), e);
      }
    }
  }

  private comprehension(
    clauses: CompClause[],
    k: number,
    elt: Expr,
    scope: Map<string, Value>,
    out: Value[],
  ): void {
    const c = clauses[k];
    if (c === undefined) {
      out.push(this.eval(elt, scope));
      return;
    }
    if (c.kind === "if") {
      if (truthy(this.eval(c.cond, scope))) this.comprehension(clauses, k + 1, elt, scope, out);
      return;
    }
    for (const item of [...this.iterable(this.eval(c.iter, scope), c.iter)]) {
      this.assign(c.target, item, scope);
      this.comprehension(clauses, k + 1, elt, scope, out);
    }
  }

  private binary(op: string, l: Value, r: Value, p: Pos): Value {
    const bad = (): never => {
      throw new StarlarkRuntimeError(
        `unsupported operand types for ${op}: ${typeName(l)} and ${typeName(r)}`,
        p.line,
        p.col,
      );
    };
    switch (op) {
      case "+":
        if (typeof l === "string" && typeof r === "string") return l + r;
        if (typeof l === "number" && typeof r === "number") return l + r;
        if (Array.isArray(l) && Array.isArray(r)) return [...l, ...r];
        if (l instanceof Tuple && r instanceof Tuple) return new Tuple([...l.items, ...r.items]);
        return bad();
      case "-":
        return typeof l === "number" && typeof r === "number" ? l - r : bad();
      case "*": {
        if (typeof l === "number" && typeof r === "number") return l * r;
        const [seq, n] = typeof r === "number" ? [l, r] : [r, l];
        if (typeof n !== "number") return bad();
        if (
          n * (typeof seq === "string" ? seq.length : Array.isArray(seq) ? seq.length : 1) >
          100_000
        ) {
          throw new StarlarkRuntimeError("repetition result too large", p.line, p.col);
        }
        if (typeof seq === "string") return seq.repeat(Math.max(0, n));
        if (Array.isArray(seq)) return Array.from({ length: Math.max(0, n) }, () => seq).flat();
        return bad();
      }
      case "/":
        if (typeof l !== "number" || typeof r !== "number") return bad();
        if (r === 0) throw new StarlarkRuntimeError("division by zero", p.line, p.col);
        return l / r;
      case "%":
      case "//":
        if (op === "%" && typeof l === "string") return percentFormat(l, r, p);
        if (typeof l !== "number" || typeof r !== "number") return bad();
        if (r === 0) throw new StarlarkRuntimeError("division by zero", p.line, p.col);
        return op === "//" ? Math.floor(l / r) : l - r * Math.floor(l / r);
      case "==":
        return equal(l, r);
      case "!=":
        return !equal(l, r);
      case "<":
      case ">":
      case "<=":
      case ">=": {
        if (
          !(
            (typeof l === "number" && typeof r === "number") ||
            (typeof l === "string" && typeof r === "string")
          )
        )
          return bad();
        return op === "<" ? l < r : op === ">" ? l > r : op === "<=" ? l <= r : l >= r;
      }
      case "in":
      case "not in": {
        let found: boolean;
        if (typeof r === "string") {
          if (typeof l !== "string") return bad();
          found = r.includes(l);
        } else if (r instanceof Map) found = r.has(l);
        else if (Array.isArray(r) || r instanceof Tuple)
          found = (Array.isArray(r) ? r : r.items).some((x) => equal(x, l));
        else return bad();
        return op === "in" ? found : !found;
      }
    }
    return bad();
  }

  /**
   * Evaluates the callee and the arguments left to right, unpacks `*xs` (a list, a tuple or a
   * dict's keys) after the positional arguments and `**d` (a dict with string keys) after the
   * keyword arguments, then calls. A keyword given twice is refused here, whatever the callee.
   */
  private call(e: Extract<Expr, { t: "call" }>, env: Map<string, Value>): Value {
    const fn = this.eval(e.fn, env);
    const args = e.args.map((a) => this.eval(a, env));
    const kwargs: [string, Value][] = e.kwargs.map(([k, v]) => [k, this.eval(v, env)]);
    if (e.star) {
      const xs = this.eval(e.star, env);
      if (!(Array.isArray(xs) || xs instanceof Tuple || xs instanceof Map))
        throw new StarlarkRuntimeError(
          `the argument after * must be a list, tuple or dict, got ${typeName(xs)}`,
          e.star.line,
          e.star.col,
        );
      // a loop, not push(...xs): spreading a list of a million items overflows the stack
      for (const x of this.iterable(xs, e.star)) args.push(x);
    }
    if (e.starstar) {
      const d = this.eval(e.starstar, env);
      if (!(d instanceof Map))
        throw new StarlarkRuntimeError(
          `the argument after ** must be a dict, got ${typeName(d)}`,
          e.starstar.line,
          e.starstar.col,
        );
      const named = new Set(kwargs.map(([k]) => k));
      for (const [k, v] of d) {
        if (typeof k !== "string")
          throw new StarlarkRuntimeError(
            `keywords in the dict after ** must be strings, got ${typeName(k)} ${repr(k)}`,
            e.starstar.line,
            e.starstar.col,
          );
        if (named.has(k))
          throw new StarlarkRuntimeError(
            `${calleeName(fn)}() got multiple values for parameter '${k}'`,
            e.line,
            e.col,
          );
        kwargs.push([k, v]);
      }
    }
    return this.callValue(fn, args, kwargs, e);
  }

  /**
   * Binds a call's arguments to `fn`'s parameters in `local`, as Starlark does: positional
   * arguments fill the positional parameters in order, extra ones go to `*args` (a tuple); keyword
   * arguments fill the positional and keyword-only parameters by name, unknown ones go to
   * `**kwargs` (a new dict, in call order); then defaults fill what is left.
   */
  private bind(
    fn: UserFunction,
    args: readonly Value[],
    kwargs: readonly [string, Value][],
    local: Map<string, Value>,
    e: Pos,
  ): void {
    const fail = (message: string): never => {
      throw new StarlarkRuntimeError(`${fn.name}() ${message}`, e.line, e.col);
    };
    const params = fn.params;
    // positional parameters come first (the parser enforces the order)
    let npos = 0;
    let varargs = false;
    let varkw = false;
    for (const p of params) {
      if (p.kind === "pos") npos++;
      else if (p.kind === "args") varargs = true;
      else if (p.kind === "kwargs") varkw = true;
    }
    if (args.length > npos && !varargs)
      fail(
        `takes ${npos} positional argument${npos === 1 ? "" : "s"} but ${args.length} were given`,
      );
    for (let i = 0; i < npos && i < args.length; i++)
      local.set((params[i] as Param).name, args[i] as Value);
    const more = new Map<Value, Value>();
    for (const [k, v] of kwargs) {
      const p = params.find((x) => x.name === k && (x.kind === "pos" || x.kind === "kwonly"));
      if (p === undefined) {
        if (!varkw) fail(`got an unexpected keyword argument '${k}'`);
        more.set(k, v);
        continue;
      }
      if (local.has(k)) fail(`got multiple values for parameter '${k}'`);
      local.set(k, v);
    }
    params.forEach((p, i) => {
      if (p.kind === "args") local.set(p.name, new Tuple(args.slice(npos)));
      else if (p.kind === "kwargs") local.set(p.name, more);
      else if (!local.has(p.name)) {
        const d = fn.defaults[i];
        if (d === undefined)
          fail(`missing ${p.kind === "kwonly" ? "keyword-only " : ""}argument '${p.name}'`);
        local.set(p.name, d as Value);
      }
    });
  }

  private callValue(fn: Value, args: Value[], kwargs: [string, Value][], e: Pos): Value {
    if (fn instanceof Builtin) {
      if (args.length > fn.maxArgs) {
        throw new StarlarkRuntimeError(
          `${fn.name}() takes at most ${fn.maxArgs} positional argument${fn.maxArgs === 1 ? "" : "s"}, got ${args.length}`,
          e.line,
          e.col,
        );
      }
      if (!fn.acceptsKwargs && kwargs.length > 0) {
        throw new StarlarkRuntimeError(
          `${fn.name}() got an unexpected keyword argument '${(kwargs[0] as [string, Value])[0]}'`,
          e.line,
          e.col,
        );
      }
      try {
        return fn.fn(args, kwargs, {
          pos: e,
          invoke: (f, a) => this.callValue(f, a, [], e),
        });
      } catch (err) {
        if (err instanceof StarlarkRuntimeError) throw err;
        throw new StarlarkRuntimeError(
          err instanceof Error ? err.message : String(err),
          e.line,
          e.col,
        );
      }
    }
    if (fn instanceof UserFunction) {
      const name = fn.name;
      if (this.stack.includes(fn))
        throw new StarlarkRuntimeError(`recursive call to '${name}' is not allowed`, e.line, e.col);
      const local = new Map<string, Value>();
      if (fn.closure) this.parents.set(local, fn.closure);
      this.bind(fn, args, kwargs, local, e);
      this.stack.push(fn);
      try {
        if ("expr" in fn.body) return this.eval(fn.body.expr, local);
        const r = this.execBlock(fn.body.block, local, false);
        return r instanceof ReturnSignal ? r.value : null;
      } finally {
        this.stack.pop();
      }
    }
    throw new StarlarkRuntimeError(`${typeName(fn)} is not callable`, e.line, e.col);
  }
}

/** The name a call error gives the callee (`f` in `f() got …`). */
function calleeName(fn: Value): string {
  return fn instanceof Builtin || fn instanceof UserFunction ? fn.name : typeName(fn);
}

/** `%s` / `%d` / `%r` / `%%` formatting of strings. */
function percentFormat(format: string, arg: Value, p: Pos): string {
  const args = arg instanceof Tuple ? [...arg.items] : [arg];
  let k = 0;
  // every % is a directive: %s %r %d %x %o or %%; anything else (widths, %(name)s, a lone %) is an error
  const out = format.replace(/%([\s\S]?)/g, (_, c: string) => {
    if (c === "%") return "%";
    if (!"srdxo".includes(c) || c === "")
      throw new StarlarkRuntimeError(
        c === "" ? "incomplete format: '%' at the end" : `unsupported format character '${c}'`,
        p.line,
        p.col,
      );
    if (k >= args.length)
      throw new StarlarkRuntimeError("not enough arguments for format string", p.line, p.col);
    const v = args[k++] as Value;
    if ("dxo".includes(c) && typeof v !== "number")
      throw new StarlarkRuntimeError(`%${c} needs an int, got ${typeName(v)}`, p.line, p.col);
    if (c === "x" || c === "o") {
      const n = v as number;
      return (n < 0 ? "-" : "") + Math.abs(n).toString(c === "x" ? 16 : 8);
    }
    return c === "r" ? repr(v) : str(v);
  });
  if (k < args.length)
    throw new StarlarkRuntimeError("too many arguments for format string", p.line, p.col);
  return out;
}

/** Strips whitespace, or the characters of `chars`, from one end. */
function stripChars(s: string, chars: Value | undefined, left: boolean): string {
  if (chars === undefined || chars === null) return left ? s.trimStart() : s.trimEnd();
  if (typeof chars !== "string") throw new Error("strip() takes a string of characters");
  const set = new Set(chars);
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.has(s[a] as string)) a++;
  else while (b > a && set.has(s[b - 1] as string)) b--;
  return s.slice(a, b);
}

/**
 * Appends `items` to `target` in a loop: `push(...items)` overflows the stack for a list of a
 * million items. The length is read first, so `x += x` and `x.extend(x)` double the list once.
 */
function appendAll(target: Value[], items: readonly Value[]): void {
  const n = items.length;
  for (let i = 0; i < n; i++) target.push(items[i] as Value);
}

/** The prefix or suffix argument of startswith/endswith: a string or a tuple of strings. */
function affixes(x: Value | undefined, method: string): string[] {
  if (typeof x === "string") return [x];
  if (x instanceof Tuple && x.items.every((i) => typeof i === "string")) return x.items as string[];
  throw new Error(`${method}() takes a string or a tuple of strings`);
}

const STRING_METHODS: Record<
  string,
  (s: string, args: Value[], kwargs: [string, Value][]) => Value
> = {
  split: (s, [sep, max]) => {
    if (sep === undefined || sep === null) return s.split(/\s+/).filter((x) => x !== "");
    if (typeof sep !== "string" || sep === "")
      throw new Error("split() separator must be a non-empty string");
    const parts = s.split(sep);
    if (typeof max === "number" && max >= 0 && parts.length > max + 1)
      return [...parts.slice(0, max), parts.slice(max).join(sep)];
    return parts;
  },
  join: (s, [items]) => {
    const list = Array.isArray(items) ? items : items instanceof Tuple ? items.items : undefined;
    if (!list?.every((x) => typeof x === "string"))
      throw new Error("join() takes a list of strings");
    return list.join(s);
  },
  strip: (s, [chars]) => stripChars(stripChars(s, chars, true), chars, false),
  lstrip: (s, [chars]) => stripChars(s, chars, true),
  rstrip: (s, [chars]) => stripChars(s, chars, false),
  lower: (s) => s.toLowerCase(),
  upper: (s) => s.toUpperCase(),
  startswith: (s, [x]) => affixes(x, "startswith").some((a) => s.startsWith(a)),
  endswith: (s, [x]) => affixes(x, "endswith").some((a) => s.endsWith(a)),
  replace: (s, [a, b]) => {
    if (typeof a !== "string" || typeof b !== "string")
      throw new Error("replace() takes two strings");
    return s.split(a).join(b);
  },
  format: (s, args, kwargs) => {
    // {} / {0} / {name}, optionally !r or !s; {{ and }} are literal braces. Anything else is an error.
    let auto = 0;
    let mode: "auto" | "manual" | undefined;
    let out = "";
    for (let i = 0; i < s.length; i++) {
      const c = s[i] as string;
      if (c === "}") {
        if (s[i + 1] !== "}") throw new Error("format(): single '}' (write '}}' for a brace)");
        out += "}";
        i++;
        continue;
      }
      if (c !== "{") {
        out += c;
        continue;
      }
      if (s[i + 1] === "{") {
        out += "{";
        i++;
        continue;
      }
      const end = s.indexOf("}", i);
      const m =
        end < 0 ? null : /^([0-9]*|[A-Za-z_][A-Za-z0-9_]*)(?:!([rs]))?$/.exec(s.slice(i + 1, end));
      if (!m) throw new Error(`format(): unsupported field ${JSON.stringify(s.slice(i, end + 1))}`);
      const field = m[1] as string;
      let v: Value | undefined;
      if (field === "" || /^[0-9]/.test(field)) {
        const kind = field === "" ? "auto" : "manual";
        if (mode !== undefined && mode !== kind)
          throw new Error("format(): cannot mix {} and {0} fields");
        mode = kind;
        v = args[field === "" ? auto++ : Number(field)];
        if (v === undefined) throw new Error("format() has fewer arguments than placeholders");
      } else {
        const kw = kwargs.find(([k]) => k === field);
        if (!kw) throw new Error(`format(): no argument named '${field}'`);
        v = kw[1];
      }
      out += m[2] === "r" ? repr(v) : str(v);
      i = end;
    }
    return out;
  },
};

/** Methods of strings, lists and dicts (the ones rules files use). Lists are mutable, as in Starlark. */
function boundMethod(obj: Value, name: string, p: Pos, guard: (v: Value) => void): Builtin {
  const fail = (): never => {
    throw new StarlarkRuntimeError(`${typeName(obj)} has no method '${name}'`, p.line, p.col);
  };
  if (typeof obj === "string") {
    const m = STRING_METHODS[name] ?? fail();
    return withArity(
      new Builtin(`${name}`, (args, kwargs) => m(obj, args, kwargs), name === "format"),
    );
  }
  if (Array.isArray(obj)) {
    if (name === "append") {
      return withArity(
        new Builtin("append", ([x]) => {
          guard(obj);
          obj.push(x as Value);
          return null;
        }),
      );
    }
    if (name === "extend") {
      return withArity(
        new Builtin("extend", ([x]) => {
          const items = Array.isArray(x) ? x : x instanceof Tuple ? x.items : undefined;
          if (!items) throw new Error("extend() takes a list");
          guard(obj);
          appendAll(obj, items);
          return null;
        }),
      );
    }
    if (name === "index") {
      return withArity(
        new Builtin("index", ([x]) => {
          const i = obj.findIndex((y) => equal(y, x as Value));
          if (i < 0) throw new Error(`${repr(x as Value)} is not in list`);
          return i;
        }),
      );
    }
    return fail();
  }
  if (obj instanceof Map) {
    if (name === "items")
      return withArity(new Builtin("items", () => [...obj].map(([k, v]) => new Tuple([k, v]))));
    if (name === "keys") return withArity(new Builtin("keys", () => [...obj.keys()]));
    if (name === "values") return withArity(new Builtin("values", () => [...obj.values()]));
    if (name === "get")
      return withArity(
        new Builtin("get", ([k, d]) =>
          obj.has(k as Value) ? (obj.get(k as Value) as Value) : (d ?? null),
        ),
      );
    return fail();
  }
  return fail();
}

function standardBuiltins(): Builtin[] {
  return uncheckedStandardBuiltins().map(withArity);
}

function uncheckedStandardBuiltins(): Builtin[] {
  const need = (cond: boolean, msg: string) => {
    if (!cond) throw new Error(msg);
  };
  return [
    new Builtin("len", (args) => {
      const v = args[0];
      need(args.length === 1 && v !== undefined, "len() takes exactly one argument");
      if (typeof v === "string") return v.length;
      if (Array.isArray(v)) return v.length;
      if (v instanceof Tuple) return v.items.length;
      if (v instanceof Map) return v.size;
      throw new Error(`len() of ${typeName(v as Value)}`);
    }),
    new Builtin("str", (args) => {
      need(args.length === 1, "str() takes exactly one argument");
      return str(args[0] as Value);
    }),
    new Builtin("list", (args) => {
      const v = args[0];
      if (v === undefined) return [];
      if (Array.isArray(v)) return [...v];
      if (v instanceof Tuple) return [...v.items];
      if (v instanceof Map) return [...v.keys()];
      throw new Error(`list() of ${typeName(v)}`);
    }),
    new Builtin("type", (args) => {
      need(args.length === 1, "type() takes exactly one argument");
      return typeName(args[0] as Value);
    }),
    new Builtin("bool", (args) => {
      const v = args[0];
      if (v === undefined) return false;
      return !(
        v === null ||
        v === false ||
        v === 0 ||
        v === "" ||
        (Array.isArray(v) && v.length === 0) ||
        (v instanceof Tuple && v.items.length === 0) ||
        (v instanceof Map && v.size === 0)
      );
    }),
    new Builtin("int", (args) => {
      const v = args[0];
      if (typeof v === "number") return Math.trunc(v);
      if (typeof v === "boolean") return v ? 1 : 0;
      if (typeof v === "string" && /^[+-]?[0-9]+$/.test(v.trim())) return Number.parseInt(v, 10);
      throw new Error(`int() cannot convert ${repr(v ?? null)}`);
    }),
    new Builtin("tuple", (args) => {
      const v = args[0];
      if (v === undefined) return new Tuple([]);
      if (Array.isArray(v)) return new Tuple([...v]);
      if (v instanceof Tuple) return v;
      if (v instanceof Map) return new Tuple([...v.keys()]);
      throw new Error(`tuple() of ${typeName(v)}`);
    }),
    new Builtin(
      "dict",
      (args, kwargs) => {
        const m = new Map<Value, Value>();
        const v = args[0];
        if (v instanceof Map) for (const [k, x] of v) m.set(k, x);
        else if (v !== undefined) throw new Error("dict() takes a dict and keyword arguments");
        for (const [k, x] of kwargs) m.set(k, x);
        return m;
      },
      true,
    ),
    new Builtin("reversed", (args) => {
      const v = args[0];
      const items = Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined;
      need(items !== undefined, "reversed() takes a list");
      return [...(items as Value[])].reverse();
    }),
    new Builtin("any", (args) => {
      const v = args[0];
      const items = Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined;
      need(items !== undefined, "any() takes a list");
      return (items as Value[]).some((x) => x !== null && x !== false && x !== 0 && x !== "");
    }),
    new Builtin("all", (args) => {
      const v = args[0];
      const items = Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined;
      need(items !== undefined, "all() takes a list");
      return (items as Value[]).every((x) => x !== null && x !== false && x !== 0 && x !== "");
    }),
    new Builtin("repr", (args) => repr(args[0] ?? null)),
    new Builtin("fail", (args) => {
      throw new Error(`fail: ${args.map((a) => str(a)).join(" ")}`);
    }),
    new Builtin(
      "enumerate",
      (args, kwargs) => {
        const v = args[0];
        const items = Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined;
        need(items !== undefined, "enumerate() takes a list");
        let start = args[1];
        for (const [k, x] of kwargs) {
          need(k === "start", `enumerate() got an unexpected keyword argument '${k}'`);
          need(start === undefined, "enumerate() got multiple values for parameter 'start'");
          start = x;
        }
        need(start === undefined || typeof start === "number", "enumerate(): start must be an int");
        const from = (start as number | undefined) ?? 0;
        return (items as Value[]).map((x, i) => new Tuple([from + i, x]));
      },
      true,
    ),
    new Builtin("zip", (args) => {
      const lists = args.map((v) =>
        Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined,
      );
      need(
        lists.every((l) => l !== undefined),
        "zip() takes lists",
      );
      const n = Math.min(...lists.map((l) => (l as Value[]).length));
      return Array.from(
        { length: lists.length === 0 ? 0 : n },
        (_, i) => new Tuple(lists.map((l) => (l as Value[])[i] as Value)),
      );
    }),
    new Builtin(
      "sorted",
      (args, kwargs, ctx) => {
        need(args.length === 1, "sorted() takes exactly one positional argument");
        const v = args[0];
        const items = Array.isArray(v) ? v : v instanceof Tuple ? v.items : undefined;
        need(items !== undefined, "sorted() takes a list");
        let key: Value | undefined;
        let reverse = false;
        for (const [k, x] of kwargs) {
          if (k === "key") key = x;
          else if (k === "reverse") {
            need(typeof x === "boolean", "sorted(): reverse must be a bool");
            reverse = x as boolean;
          } else throw new Error(`sorted() got an unexpected keyword argument '${k}'`);
        }
        const list = items as readonly Value[];
        const keys = key === undefined ? list : list.map((x) => ctx.invoke(key as Value, [x]));
        need(
          keys.every((x) => typeof x === "string") || keys.every((x) => typeof x === "number"),
          "sorted() compares strings with strings or ints with ints",
        );
        const order = list.map((_, i) => i);
        const k = keys as (string | number)[];
        // stable in both directions, as in Starlark (equal keys keep their order)
        const cmp = (a: number, b: number) =>
          (k[a] as string | number) < (k[b] as string | number)
            ? -1
            : (k[a] as string | number) > (k[b] as string | number)
              ? 1
              : 0;
        order.sort((a, b) => (reverse ? cmp(b, a) : cmp(a, b)));
        return order.map((i) => list[i] as Value);
      },
      true,
    ),
    new Builtin("range", (args) => {
      need(
        args.length >= 1 && args.length <= 2 && args.every((a) => typeof a === "number"),
        "range() takes one or two ints",
      );
      const [a, b] =
        args.length === 1 ? [0, args[0] as number] : [args[0] as number, args[1] as number];
      need(b - a <= 100_000, "range() too large");
      return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
    }),
  ];
}
