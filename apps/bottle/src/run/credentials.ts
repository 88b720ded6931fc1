import { createScanner, type KnownSecret } from "@bottlekit/egress-dlp";
import type { EnvChecker } from "@bottlekit/sandbox";

/** Host variable names that hold credentials by convention. */
const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION)/i;

/**
 * The credentials this host holds: the declared credential variables plus every host variable
 * whose name says it is a secret (values of 8 characters or more).
 */
export function hostCredentials(
  hostEnv: Readonly<Record<string, string | undefined>>,
  declared: readonly string[],
): KnownSecret[] {
  const out = new Map<string, KnownSecret>();
  for (const [name, value] of Object.entries(hostEnv)) {
    if (value === undefined || value.length < 8) continue;
    if (declared.includes(name) || SECRET_NAME.test(name)) out.set(name, { name, value });
  }
  return [...out.values()];
}

/**
 * The probe's credential check: egress-dlp's known-secret scanner (raw, base64, base32, hex,
 * reversed, fragments) over every value the sandbox sees. Findings name the variable, never a value.
 */
export function credentialChecker(known: readonly KnownSecret[]): EnvChecker & {
  /** Builds the scanner now (it is otherwise built at the first check). */
  prepare(): void;
} {
  let scanner: ReturnType<typeof createScanner> | undefined;
  // No credential on the host: none can have reached the sandbox, and there is nothing to build a
  // scanner for (the probe waits on this thread while it would be built).
  const prepare = () => {
    if (known.length > 0)
      scanner ??= createScanner({ detectors: ["known_secrets"], knownSecrets: known });
    return scanner;
  };
  const check: EnvChecker = (env) => {
    const scanner = prepare();
    if (scanner === undefined) {
      return {
        ok: true,
        detail: `${Object.keys(env).length} values, and the host holds no credential to look for`,
      };
    }
    const hits: string[] = [];
    for (const [name, value] of Object.entries(env)) {
      const r = scanner.scan(`${value}`, `env.${name}`);
      if (r.blocked || r.findings.length > 0) hits.push(name);
    }
    if (hits.length > 0)
      return { ok: false, detail: `host credential found in ${hits.join(", ")}` };
    return {
      ok: true,
      detail: `${Object.keys(env).length} values scanned against ${known.length} host credential(s)`,
    };
  };
  return Object.assign(check, { prepare: () => void prepare() });
}
