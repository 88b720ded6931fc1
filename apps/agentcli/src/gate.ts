/**
 * The exec policy gate: every `shell` script and every tools.json command is checked with
 * @bottlekit/execpolicy as a whole, before anything runs. A policy file that does not load stops
 * the run (fail closed): a broken file must never silently mean "fewer rules".
 */
import { existsSync } from "node:fs";
import type { CheckResult, Decision, Policy } from "@bottlekit/execpolicy";
import { AgentCliError } from "./errors.ts";

export interface PolicyFileRef {
  path: string;
  /** flag, env BOTTLEKIT_EXEC_POLICY, user amendments. */
  origin: string;
}

export interface GateVerdict {
  decision: Decision;
  /** One line: what was decided and why (the rule's justification when there is one). */
  reason: string;
  /** The forbidding or prompting rule's justification, when the rule has one. */
  justification: string | undefined;
  /** `file:line:col` of the deciding rule. */
  rule: string | undefined;
  /** Files the script redirects output to (from the parser). */
  writes: string[];
}

type ExecPolicy = typeof import("@bottlekit/execpolicy");

export class PolicyGate {
  readonly files: PolicyFileRef[];
  readonly #policy: Policy;
  readonly #lib: ExecPolicy;

  private constructor(lib: ExecPolicy, policy: Policy, files: PolicyFileRef[]) {
    this.#lib = lib;
    this.#policy = policy;
    this.files = files;
  }

  /** Loads the policy files; optional ones (amendments) are skipped when absent. */
  static async load(files: PolicyFileRef[], optional: PolicyFileRef[] = []): Promise<PolicyGate> {
    const lib = await import("@bottlekit/execpolicy");
    for (const f of files) {
      if (!existsSync(f.path)) {
        throw new AgentCliError(
          "E_INVALID_INPUT",
          `${f.path}: policy file not found (${f.origin})`,
          {
            hint: "fix the --policy path or BOTTLEKIT_EXEC_POLICY",
          },
        );
      }
    }
    const all = [...files, ...optional.filter((f) => existsSync(f.path))];
    const { policy, errors } = await lib.loadPolicyFiles(all.map((f) => f.path));
    if (errors.length > 0) {
      const first = errors[0];
      throw new AgentCliError(
        "E_INVALID_INPUT",
        `policy file did not load: ${first ? lib.formatDiagnostic(first) : "unknown error"}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ""}`,
        {
          hint: "fix the file (check it with `execpolicy test FILE`); agentcli will not run with part of its policy",
        },
      );
    }
    return new PolicyGate(lib, policy, all);
  }

  async checkScript(script: string): Promise<GateVerdict> {
    return this.#verdict(await this.#lib.checkShell(this.#policy, script));
  }

  async checkArgv(argv: readonly string[]): Promise<GateVerdict> {
    return this.#verdict(await this.#lib.checkCommand(this.#policy, argv));
  }

  #verdict(r: CheckResult): GateVerdict {
    const worst = r.commands.find((c) => c.decision === r.decision);
    const rule = worst?.matchedRules.find((m) => m.decision === r.decision);
    return {
      decision: r.decision,
      reason: this.#lib.explain(r),
      justification: rule?.justification,
      rule: rule?.source,
      writes: r.commands.flatMap((c) => c.writes ?? []),
    };
  }
}
