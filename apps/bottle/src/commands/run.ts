import { isSandboxError } from "@bottlekit/sandbox";
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
    if (isSandboxError(error)) {
      io.stderr.write(`bottle: ${error.message}\n`);
      if (error.hint) io.stderr.write(`hint: ${error.hint}\n`);
      if (flags.json)
        io.stdout.write(
          `${JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint ?? null } }, null, 2)}\n`,
        );
      return SANDBOX_EXIT[error.code] ?? RUN_EXIT.failure;
    }
    if (error instanceof Error && error.name === "EgressProxyError" && "code" in error) {
      const e = error as Error & { code: string; hint?: string };
      io.stderr.write(`bottle: ${e.message}\n`);
      if (e.hint) io.stderr.write(`hint: ${e.hint}\n`);
      return e.code === "E_INVALID_INPUT" ? RUN_EXIT.usage : RUN_EXIT.failure;
    }
    throw error;
  }
}
