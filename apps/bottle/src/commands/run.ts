import { renderCliError } from "@bottlekit/diagnostics";
import type { CliIo } from "../cli.ts";
import { executeRun, RUN_EXIT } from "../run/execute.ts";
import type { RunFlags } from "../run/plan.ts";

/** Exit code of each sandbox error: a missing bwrap or a bad spec is an install/usage problem (2). */
const SANDBOX_EXIT: Record<string, number> = {
  E_INVALID_SPEC: RUN_EXIT.usage,
  E_BWRAP_MISSING: RUN_EXIT.usage,
  E_UNSUPPORTED_PLATFORM: RUN_EXIT.usage,
  E_ROOT_REFUSED: RUN_EXIT.failure,
  E_SPAWN: RUN_EXIT.failure,
  E_PROBE_FAILED: RUN_EXIT.policy,
};

/** Errors of the libraries `bottle run` composes that the CLI's top-level catch does not know. */
const RENDERED_HERE = new Set(["SandboxError", "EgressProxyError", "GatewayError"]);

/** Exit code of each error of the embedded gateway (a bad BOTTLEKIT_GATEWAY_CONFIG is 2). */
const GATEWAY_EXIT: Record<string, number> = {
  E_CONFIG: RUN_EXIT.usage,
  E_USAGE: RUN_EXIT.usage,
  E_INVALID_INPUT: RUN_EXIT.usage,
  E_POLICY: RUN_EXIT.policy,
};

/**
 * `bottle run [agent] [-- command…]`: the agent in a sandbox whose only way out is the egress
 * proxy. Exit code: the agent's own; 3 when a policy stopped it (probe, cutoff, freeze, kill).
 */
export async function runRun(
  agent: string | undefined,
  trailing: string[],
  flags: RunFlags,
  io: CliIo,
): Promise<number> {
  try {
    const outcome = await executeRun(agent, trailing, flags, io);
    return outcome.code;
  } catch (error) {
    if (error instanceof Error && RENDERED_HERE.has(error.name)) {
      return renderCliError(error, {
        program: "bottle",
        stderr: io.stderr,
        stdout: io.stdout,
        json: flags.json === true,
        exitCodeOf: (code) =>
          error.name === "SandboxError"
            ? SANDBOX_EXIT[code]
            : error.name === "GatewayError"
              ? GATEWAY_EXIT[code]
              : undefined,
      });
    }
    throw error;
  }
}
