import { inspect } from "node:util";
import { ManifestError } from "./errors.ts";

/**
 * One `env` entry of an effective bottle. Only literals carry their text: host values and answers
 * asked at launch are never read while resolving manifests, so they cannot leak from here.
 */
export type EnvValue =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "ask"; readonly prompt: string | undefined }
  | { readonly kind: "host"; readonly name: string };

/** Classifies a raw (validated) env value. */
export function classifyEnv(raw: string | number | boolean): EnvValue {
  if (typeof raw !== "string") return { kind: "literal", value: String(raw) };
  if (raw.startsWith("?")) {
    const prompt = raw.slice(1).trim();
    return { kind: "ask", prompt: prompt === "" ? undefined : prompt };
  }
  const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw);
  if (m) return { kind: "host", name: m[1] as string };
  return { kind: "literal", value: raw };
}

/** How an env value is shown in explain output, JSON dumps and logs. */
export function displayEnv(value: EnvValue): string {
  switch (value.kind) {
    case "literal":
      return value.value;
    case "ask":
      return "<asked at launch>";
    case "host":
      return `<from $${value.name}>`;
  }
}

export interface MaterializeOptions {
  /** The host environment to copy `${HOST_VAR}` values from. */
  hostEnv: Readonly<Record<string, string | undefined>>;
  /** Asks the user for a value (`"?"` entries). Without it, asking entries are an error. */
  ask?: (name: string, prompt: string | undefined) => Promise<string>;
}

/**
 * The concrete environment for a launched agent. Its values never show up through `String()`,
 * `JSON.stringify`, `util.inspect` or error messages; call `.expose()` only to hand them to the
 * child process.
 */
export class LaunchEnv {
  readonly #values: Readonly<Record<string, string>>;
  /** Where each variable came from, safe to print. */
  readonly sources: Readonly<Record<string, string>>;

  constructor(values: Record<string, string>, sources: Record<string, string>) {
    this.#values = Object.freeze({ ...values });
    this.sources = Object.freeze({ ...sources });
  }

  /** The real values, for the child process environment only. */
  expose(): Readonly<Record<string, string>> {
    return this.#values;
  }

  toJSON(): Record<string, string> {
    return { ...this.sources };
  }

  toString(): string {
    return `LaunchEnv(${Object.keys(this.sources).join(", ")})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Turns effective env entries into concrete values: literals as written, `${HOST_VAR}` from
 * `hostEnv`, `"?"` through `ask`. Fails closed: a missing host variable or a missing `ask` is an
 * error naming only the variable, never a value.
 */
export async function materializeEnv(
  env: Readonly<Record<string, EnvValue>>,
  options: MaterializeOptions,
): Promise<LaunchEnv> {
  const values: Record<string, string> = {};
  const sources: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    sources[name] = value.kind === "literal" ? "<literal>" : displayEnv(value);
    if (value.kind === "literal") values[name] = value.value;
    else if (value.kind === "host") {
      const v = options.hostEnv[value.name];
      if (v === undefined) {
        throw new ManifestError(
          "E_ENV_MISSING",
          `env.${name}: host variable $${value.name} is not set`,
          {
            hint: `export ${value.name} before launching, or change env.${name} in the bottle`,
          },
        );
      }
      values[name] = v;
    } else {
      if (!options.ask) {
        throw new ManifestError(
          "E_ENV_MISSING",
          `env.${name}: the bottle asks for this value at launch, but no prompt is available`,
          { hint: 'run from a terminal, or set the value in the bottle with "${HOST_VAR}"' },
        );
      }
      values[name] = await options.ask(name, value.prompt);
    }
  }
  return new LaunchEnv(values, sources);
}
