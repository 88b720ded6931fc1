/**
 * Loader for Codex `.rules` files (Starlark): `prefix_rule`, `host_executable`, `network_rule`.
 * Validation follows Codex (decisions, non-empty patterns and alternatives, non-blank
 * justifications, absolute host paths named after the executable, `match`/`not_match` examples).
 */
import { type Decision, isDecision } from "./decision.ts";
import type { Diagnostic } from "./diagnostic.ts";
import {
  type NetworkProtocol,
  type NetworkRule,
  Policy,
  type PrefixRule,
  type SourceLocation,
} from "./policy.ts";
import { shlexSplit } from "./shlex.ts";
import {
  Builtin,
  type CallContext,
  Interpreter,
  repr,
  StarlarkRuntimeError,
  typeName,
  type Value,
} from "./starlark/eval.ts";
import { StarlarkSyntaxError } from "./starlark/lexer.ts";
import { parseModule } from "./starlark/parser.ts";

/** Examples declared on one `prefix_rule` call, checked after the file has loaded. */
export interface PendingExamples {
  rules: PrefixRule[];
  match: { argv: string[]; text: string }[];
  notMatch: { argv: string[]; text: string }[];
  source: SourceLocation;
}

export interface ParsedRulesFile {
  policy: Policy;
  examples: PendingExamples[];
  /** Examples that do not hold. A file with failures must not be used. */
  exampleFailures: Diagnostic[];
}

class ArgError extends Error {}

function bindArgs(
  fn: string,
  names: readonly string[],
  args: Value[],
  kwargs: [string, Value][],
): Map<string, Value> {
  if (args.length > names.length)
    throw new ArgError(
      `${fn}() takes at most ${names.length} positional arguments, got ${args.length}`,
    );
  const out = new Map<string, Value>();
  for (const [i, a] of args.entries()) out.set(names[i] as string, a);
  for (const [k, v] of kwargs) {
    if (!names.includes(k)) {
      throw new ArgError(
        `${fn}() got an unexpected keyword argument '${k}' (expected one of: ${names.join(", ")})`,
      );
    }
    if (out.has(k)) throw new ArgError(`${fn}() got multiple values for parameter '${k}'`);
    out.set(k, v);
  }
  return out;
}

function required(a: Map<string, Value>, fn: string, name: string): Value {
  const v = a.get(name);
  if (v === undefined) throw new ArgError(`${fn}() missing required argument '${name}'`);
  return v;
}

function asList(v: Value, what: string): readonly Value[] {
  // Codex's builtins are typed: only lists (not tuples, not None) are accepted
  if (Array.isArray(v)) return v;
  throw new ArgError(`${what} must be a list, got ${typeName(v)} ${repr(v)}`);
}

function asString(v: Value, what: string): string {
  if (typeof v !== "string")
    throw new ArgError(`${what} must be a string, got ${typeName(v)} ${repr(v)}`);
  return v;
}

function optString(v: Value | undefined, what: string): string | undefined {
  return v === undefined ? undefined : asString(v, what);
}

function optBool(v: Value | undefined, what: string): boolean | undefined {
  if (v === undefined || typeof v === "boolean") return v;
  throw new ArgError(`${what} must be a bool, got ${typeName(v)} ${repr(v)}`);
}

function parseDecision(v: Value | undefined): Decision {
  if (v === undefined) return "allow";
  const s = asString(v, "decision");
  if (!isDecision(s))
    throw new ArgError(`invalid decision: ${s} (expected "allow", "prompt" or "forbidden")`);
  return s;
}

function parseExamples(v: Value | undefined, what: string): { argv: string[]; text: string }[] {
  if (v === undefined) return [];
  return asList(v, what).map((ex, i) => {
    if (typeof ex === "string") {
      const argv = shlexSplit(ex);
      if (argv === undefined)
        throw new ArgError(`${what}[${i}]: invalid shell syntax in example ${JSON.stringify(ex)}`);
      if (argv.length === 0) throw new ArgError(`${what}[${i}]: example is empty`);
      return { argv, text: ex };
    }
    const items = asList(ex, `${what}[${i}]`).map((t, j) => asString(t, `${what}[${i}][${j}]`));
    if (items.length === 0) throw new ArgError(`${what}[${i}]: example is empty`);
    return { argv: items, text: items.join(" ") };
  });
}

const PROTOCOLS: Record<string, NetworkProtocol> = {
  http: "http",
  https: "https",
  https_connect: "https",
  "http-connect": "https",
  socks5_tcp: "socks5_tcp",
  socks5_udp: "socks5_udp",
};

/** Lowercases and strips the port; rejects schemes, paths and wildcards (Codex). */
export function normalizeNetworkHost(raw: string): string {
  const host = raw.trim().toLowerCase();
  if (host === "") throw new ArgError("network_rule host must not be empty");
  if (host.includes("://"))
    throw new ArgError(`network_rule host must not include a scheme: ${raw}`);
  if (host.includes("/")) throw new ArgError(`network_rule host must not include a path: ${raw}`);
  if (host.includes("*"))
    throw new ArgError(`network_rule host must not contain wildcards: ${raw}`);
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) throw new ArgError(`invalid network_rule host: ${raw}`);
    return host.slice(1, end);
  }
  const colons = host.split(":").length - 1;
  if (colons === 1) {
    const [h, port] = host.split(":") as [string, string];
    if (!/^[0-9]+$/.test(port)) throw new ArgError(`invalid port in network_rule host: ${raw}`);
    return h;
  }
  return host;
}

/** Parses one rules file. Throws a Diagnostic-shaped error on the first problem. */
export function parseRulesFile(
  text: string,
  file: string,
  hostExecutablesSoFar?: ReadonlyMap<string, readonly string[]>,
): ParsedRulesFile {
  const policy = new Policy();
  const examples: PendingExamples[] = [];
  const loc = (ctx: CallContext): SourceLocation => ({
    file,
    line: ctx.pos.line,
    column: ctx.pos.col,
  });

  const prefixRule = new Builtin(
    "prefix_rule",
    (args, kwargs, ctx) => {
      const a = bindArgs(
        "prefix_rule",
        ["pattern", "decision", "match", "not_match", "justification", "canonical_matching"],
        args,
        kwargs,
      );
      const patternValue = a.get("pattern");
      if (patternValue === undefined)
        throw new ArgError("prefix_rule() missing required argument 'pattern'");
      const pattern = asList(patternValue, "pattern");
      if (pattern.length === 0) throw new ArgError("pattern cannot be empty");
      const positions = pattern.map((el, i) => {
        if (typeof el === "string") return [el];
        if (Array.isArray(el)) {
          const alts = asList(el, `pattern[${i}]`).map((x, j) =>
            asString(x, `pattern[${i}][${j}]`),
          );
          if (alts.length === 0) throw new ArgError(`pattern[${i}]: alternatives cannot be empty`);
          return alts;
        }
        throw new ArgError(
          `pattern[${i}] must be a string or a list of strings, got ${typeName(el)} ${repr(el)}`,
        );
      });
      const decision = parseDecision(a.get("decision"));
      // Codex 0.169 accepts canonical_matching (a bool) and applies it in its runtime; bottlekit's
      // shell analysis always sees through wrappers, so it only needs to be type-checked here.
      optBool(a.get("canonical_matching"), "canonical_matching");
      const justification = optString(a.get("justification"), "justification");
      if (justification !== undefined && justification.trim() === "")
        throw new ArgError("justification cannot be empty");
      const match = parseExamples(a.get("match"), "match");
      const notMatch = parseExamples(a.get("not_match"), "not_match");
      const source = loc(ctx);
      const rest = positions.slice(1).map((alts) => alts.map((literal) => ({ literal })));
      const rules: PrefixRule[] = [];
      for (const head of positions[0] as string[]) {
        const rule: PrefixRule = { program: head, rest, decision, justification, source };
        rules.push(rule);
        policy.addRule(rule);
      }
      if (match.length > 0 || notMatch.length > 0)
        examples.push({ rules, match, notMatch, source });
      return null;
    },
    true,
  );

  const hostExecutable = new Builtin(
    "host_executable",
    (args, kwargs) => {
      const a = bindArgs("host_executable", ["name", "paths"], args, kwargs);
      const name = asString(required(a, "host_executable", "name"), "name");
      if (name === "" || name.includes("/") || name.includes("\\")) {
        throw new ArgError(
          `host_executable name must be a bare executable name, got ${JSON.stringify(name)}`,
        );
      }
      const paths = asList(required(a, "host_executable", "paths"), "paths").map((p, i) => {
        const path = asString(p, `paths[${i}]`);
        if (!path.startsWith("/"))
          throw new ArgError(`host_executable path must be absolute: ${JSON.stringify(path)}`);
        const base = path.slice(path.lastIndexOf("/") + 1);
        if (base !== name)
          throw new ArgError(
            `host_executable path ${JSON.stringify(path)} must have basename ${JSON.stringify(name)}`,
          );
        return path;
      });
      policy.setHostExecutable(name, paths);
      return null;
    },
    true,
  );

  const networkRule = new Builtin(
    "network_rule",
    (args, kwargs, ctx) => {
      const a = bindArgs(
        "network_rule",
        ["host", "protocol", "decision", "justification"],
        args,
        kwargs,
      );
      const host = normalizeNetworkHost(asString(required(a, "network_rule", "host"), "host"));
      const protoRaw = asString(required(a, "network_rule", "protocol"), "protocol");
      const protocol = PROTOCOLS[protoRaw];
      if (protocol === undefined) {
        throw new ArgError(
          `invalid protocol: ${protoRaw} (expected http, https, socks5_tcp or socks5_udp)`,
        );
      }
      const d = asString(required(a, "network_rule", "decision"), "decision");
      const decision =
        d === "deny" || d === "forbidden"
          ? "deny"
          : d === "allow" || d === "prompt"
            ? d
            : undefined;
      if (decision === undefined) throw new ArgError(`invalid decision: ${d}`);
      const justification = optString(a.get("justification"), "justification");
      if (justification !== undefined && justification.trim() === "")
        throw new ArgError("justification cannot be empty");
      const rule: NetworkRule = { host, protocol, decision, justification, source: loc(ctx) };
      policy.networkRules.push(rule);
      return null;
    },
    true,
  );

  try {
    const module = parseModule(text);
    new Interpreter([prefixRule, hostExecutable, networkRule], file).run(module);
  } catch (err) {
    if (err instanceof StarlarkSyntaxError || err instanceof StarlarkRuntimeError) {
      throw { file, line: err.line, column: err.col, message: err.message } satisfies Diagnostic;
    }
    throw err;
  }
  const hostExecutables = new Map(hostExecutablesSoFar);
  for (const [k, v] of policy.hostExecutables) hostExecutables.set(k, v);
  return { policy, examples, exampleFailures: checkExamples(examples, hostExecutables) };
}

/** Checks examples against their own rules (plus host executables), as Codex does at load. Returns every failure. */
export function checkExamples(
  examples: readonly PendingExamples[],
  hostExecutables: ReadonlyMap<string, readonly string[]>,
): Diagnostic[] {
  const failures: Diagnostic[] = [];
  for (const ex of examples) {
    const own = new Policy();
    for (const r of ex.rules) own.addRule(r);
    for (const [k, v] of hostExecutables) own.setHostExecutable(k, v);
    const opts = { resolveHostExecutables: true };
    const at = {
      file: ex.source.file,
      line: ex.source.line,
      column: ex.source.column,
      kind: "example" as const,
    };
    for (const m of ex.match) {
      if (own.match(m.argv, opts).length === 0) {
        failures.push({
          ...at,
          message: `example did not match its rule: ${JSON.stringify(m.text)} (match examples must match the rule's pattern)`,
          hint: "fix the pattern or the example; string examples are split like a shell would split them",
        });
      }
    }
    for (const m of ex.notMatch) {
      if (own.match(m.argv, opts).length > 0) {
        failures.push({
          ...at,
          message: `not_match example matched its rule: ${JSON.stringify(m.text)}`,
          hint: "narrow the pattern or remove the example",
        });
      }
    }
  }
  return failures;
}
