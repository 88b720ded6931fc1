import { describe, expect, it } from "vitest";
import { checkArgv } from "./check.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { parseNativePolicy, policyJsonSchema, validatePolicyFile } from "./native-format.ts";

function load(yaml: string) {
  const r = parseNativePolicy(yaml, "p.yaml");
  expect(r.exampleFailures).toEqual([]);
  return r.policy;
}

function loadError(yaml: string): Diagnostic {
  try {
    const r = parseNativePolicy(yaml, "p.yaml");
    if (r.exampleFailures[0]) return r.exampleFailures[0];
  } catch (err) {
    return err as Diagnostic;
  }
  throw new Error("expected a load error");
}

describe("native YAML format", () => {
  it("exceptions: prompt terraform except allow terraform fmt", () => {
    const p = load(`
version: 1
rules:
  - pattern: [terraform]
    decision: prompt
    except:
      - pattern: [terraform, fmt]
        decision: allow
    match: ["terraform plan", "terraform fmt"]
`);
    expect(checkArgv(p, ["terraform", "fmt", "-recursive"]).decision).toBe("allow");
    expect(checkArgv(p, ["terraform", "apply"]).decision).toBe("prompt");
    const m = checkArgv(p, ["terraform", "fmt"]).matchedRules[0];
    expect(m?.exception).toBe("p.yaml:7:9");
    expect(m?.source).toBe("p.yaml:4:5");
  });

  it("an exception does not override another rule: strictest still wins across rules", () => {
    const p = load(`
version: 1
rules:
  - pattern: [terraform]
    decision: prompt
    except: [{ pattern: [terraform, fmt], decision: allow }]
  - pattern: [terraform, fmt, -write=true]
    decision: forbidden
`);
    expect(checkArgv(p, ["terraform", "fmt", "-write=true"]).decision).toBe("forbidden");
  });

  it("options anywhere: git … push whatever global options come first", () => {
    const p = load(`
version: 1
rules:
  - pattern: [git, push]
    decision: forbidden
    options_anywhere: true
    match: ["git -C repo -c a=b --no-pager push origin", "git push"]
    not_match: ["git log push", "git status"]
`);
    expect(checkArgv(p, ["git", "-c", "a=b", "push"]).decision).toBe("forbidden");
    expect(checkArgv(p, ["git", "--git-dir=x", "push"]).matchedRules[0]?.matchedPrefix).toEqual([
      "git",
      "push",
    ]);
    expect(checkArgv(p, ["git", "status"]).commands[0]?.unmatched).toBe(true);
  });

  it("options anywhere with an explicit list of options that take a value", () => {
    const p = load(`
version: 1
rules:
  - pattern: [tool, deploy]
    decision: prompt
    options_anywhere: [--env, -e]
`);
    expect(checkArgv(p, ["tool", "--env", "prod", "-v", "deploy"]).decision).toBe("prompt");
    // without the list, "prod" would be taken for the subcommand and the rule would not match
    expect(checkArgv(p, ["tool", "--region", "eu", "deploy"]).commands[0]?.unmatched).toBe(true);
  });

  it("argument globs and escaped glob characters", () => {
    const p = load(`
version: 1
rules:
  - pattern: [rm, "-*r*"]
    decision: forbidden
  - pattern: [echo, "\\\\*"]
  - pattern: [kubectl, [get, describe], "pod?/*"]
`);
    expect(checkArgv(p, ["rm", "-fr", "x"]).decision).toBe("forbidden");
    expect(checkArgv(p, ["rm", "-f", "x"]).commands[0]?.unmatched).toBe(true);
    expect(checkArgv(p, ["echo", "*"]).decision).toBe("allow");
    expect(checkArgv(p, ["echo", "x"]).commands[0]?.unmatched).toBe(true);
    expect(checkArgv(p, ["kubectl", "describe", "pods/web"]).decision).toBe("allow");
  });

  it("maximum argument count", () => {
    const p = load(`
version: 1
rules:
  - pattern: [cat]
    max_args: 1
`);
    expect(checkArgv(p, ["cat", "a"]).decision).toBe("allow");
    expect(checkArgv(p, ["cat", "a", "b"]).commands[0]?.unmatched).toBe(true);
  });

  it("default decision, host executables and network rules", () => {
    const p = load(`
version: 1
default: forbidden
rules:
  - pattern: [git]
    decision: prompt
host_executables:
  git: [/usr/bin/git]
network:
  - { host: "Example.com:443", protocol: https, decision: forbidden }
`);
    expect(p.defaultDecision).toBe("forbidden");
    expect(checkArgv(p, ["ls"]).decision).toBe("forbidden");
    expect(checkArgv(p, ["/usr/bin/git", "x"], { resolveHostExecutables: true }).decision).toBe(
      "prompt",
    );
    expect(checkArgv(p, ["/opt/git", "x"], { resolveHostExecutables: true }).decision).toBe(
      "forbidden",
    );
    expect(p.networkRules[0]).toMatchObject({ host: "example.com", decision: "deny" });
  });

  it("reports errors with the key path, line and column", () => {
    expect(loadError(`version: 1\nrules:\n  - pattern: [ls]\n    decison: allow\n`)).toMatchObject({
      line: 3,
      message: "rules[0]: unknown key 'decison' (did you mean 'decision'?)",
      hint: expect.stringContaining("allowed keys here: pattern, decision"),
    });
    expect(loadError(`version: 1\nrules:\n  - pattern: []\n`)).toMatchObject({
      line: 3,
      column: 14,
      message: "rules[0].pattern: pattern cannot be empty",
    });
    expect(loadError(`version: 1\nrules:\n  - pattern: [ls]\n    decision: deny\n`)).toMatchObject({
      line: 4,
      column: 15,
    });
    expect(loadError(`version: 2\n`).message).toContain("version");
    expect(loadError(`version: 1\nrules: [\n`).message).toContain("invalid YAML");
    expect(loadError(`version: 1\nrules:\n  - pattern: ["*"]\n`).message).toContain(
      "cannot be a glob",
    );
    expect(
      loadError(
        `version: 1\nrules:\n  - pattern: [a]\n    except: [{ pattern: [b], decision: allow }]\n`,
      ).message,
    ).toContain("must start with the rule's program");
    expect(
      loadError(`version: 1\nrules:\n  - pattern: [a, b]\n    match: ["a c"]\n`),
    ).toMatchObject({ kind: "example", line: 3 });
  });

  it("validatePolicyFile returns every error as path: message", () => {
    const r = validatePolicyFile({
      version: 1,
      rules: [{ pattern: [], decison: "allow" }],
      defualt: "allow",
    });
    expect(r.value).toBeUndefined();
    expect(r.errors).toContain("unknown key 'defualt' (did you mean 'default'?)");
    expect(r.errors).toContain("rules[0].pattern: pattern cannot be empty");
    expect(validatePolicyFile({ version: 1 })).toMatchObject({
      errors: [],
      warnings: [],
      value: { version: 1, rules: [] },
    });
  });

  it("exports a JSON Schema generated from the zod schema", () => {
    const schema = policyJsonSchema();
    expect(schema).toMatchSnapshot();
    expect(Object.keys((schema as { properties: object }).properties)).toEqual([
      "version",
      "default",
      "rules",
      "host_executables",
      "network",
    ]);
  });
});
