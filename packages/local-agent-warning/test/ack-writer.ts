// Child process for the concurrency test: prints "ready", waits for a line on stdin (the
// parent releases both children at once), then records `count` acknowledgements one by one,
// each a separate read-merge-write of the ack file.
import { once } from "node:events";
import { writeAck } from "../src/ack.ts";

const [home, prefix, countText] = process.argv.slice(2);
if (!home || !prefix || !countText) {
  process.stderr.write("usage: ack-writer <home> <interface-prefix> <count>\n");
  process.exitCode = 2;
} else {
  const count = Number(countText);
  process.stdout.write("ready\n");
  await once(process.stdin, "data");
  process.stdin.pause();
  for (let i = 0; i < count; i++) {
    await writeAck(
      [
        {
          interface: i === 0 ? prefix : `${prefix}-${i}`,
          binary: prefix,
          binaryPath: `/opt/${prefix}`,
          permissionMode: "default",
        },
      ],
      { home, lockTimeoutMs: 20_000 },
    );
  }
  process.stdout.write(`${prefix} done\n`);
}
