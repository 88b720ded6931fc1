import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildSandboxEnv, ENV_ALLOWLIST, RESERVED_ENV_NAMES } from "./env.ts";
import { isSandboxError } from "./errors.ts";

const base = { home: "/home/bottle", user: "agent" };

describe("buildSandboxEnv", () => {
  it("copies only the allowlist from the host", () => {
    const env = buildSandboxEnv({
      ...base,
      hostEnv: {
        PATH: "/usr/bin",
        TERM: "xterm",
        ANTHROPIC_API_KEY: "sk-ant-real",
        AWS_SECRET_ACCESS_KEY: "x",
        SSH_AUTH_SOCK: "/run/ssh",
      },
    });
    expect(env["PATH"]).toBe("/usr/bin");
    expect(env["TERM"]).toBe("xterm");
    expect(env["ANTHROPIC_API_KEY"]).toBeUndefined();
    expect(env["AWS_SECRET_ACCESS_KEY"]).toBeUndefined();
    expect(env["SSH_AUTH_SOCK"]).toBeUndefined();
  });

  it("sets proxy variables in both cases and the CA variables", () => {
    const env = buildSandboxEnv({
      ...base,
      hostEnv: {},
      proxyPort: 3128,
      caBundlePath: "/run/bottle/ca-bundle.pem",
      caCertPath: "/run/bottle/ca.pem",
    });
    for (const n of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"])
      expect(env[n]).toBe("http://127.0.0.1:3128");
    expect(env["SSL_CERT_FILE"]).toBe("/run/bottle/ca-bundle.pem");
    expect(env["CODEX_CA_CERTIFICATE"]).toBe("/run/bottle/ca-bundle.pem");
    expect(env["NODE_EXTRA_CA_CERTS"]).toBe("/run/bottle/ca.pem");
    expect(env["HOME"]).toBe("/home/bottle");
  });

  it("refuses reserved and malformed names", () => {
    const cases: Record<string, string>[] = [
      { HOME: "/root" },
      { https_proxy: "http://evil" },
      { "1BAD": "x" },
      { "A-B": "x" },
    ];
    for (const env of cases) {
      let error: unknown;
      try {
        buildSandboxEnv({ ...base, hostEnv: {}, env });
      } catch (e) {
        error = e;
      }
      expect(isSandboxError(error) && error.code).toBe("E_INVALID_SPEC");
    }
  });

  it("never lets a host variable outside the allowlist through (property)", () => {
    const allowed = new Set([...ENV_ALLOWLIST, ...RESERVED_ENV_NAMES]);
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/), fc.string()),
        (hostEnv) => {
          const env = buildSandboxEnv({ ...base, hostEnv });
          return Object.keys(env).every((k) => allowed.has(k));
        },
      ),
    );
  });
});
