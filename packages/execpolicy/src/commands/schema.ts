import type { CliIo } from "../cli.ts";
import { policyJsonSchema } from "../native-format.ts";

/** `execpolicy schema`: the JSON Schema of the native YAML format on stdout. */
export function schemaCommandAction(io: CliIo): number {
  io.stdout.write(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  return 0;
}
