/**
 * Writes reserve/settle pairs in a loop until killed. After each committed settle it prints
 * "<count> <tokens so far>" so the parent knows what was acknowledged before it sent SIGKILL.
 * argv: <db path> <agent>
 */
import { writeSync } from "node:fs";
import { openStore } from "../../src/index.ts";

const [dbPath, agent = "crash"] = process.argv.slice(2);

const pause = new Int32Array(new SharedArrayBuffer(4));
/**
 * Write the acknowledgement synchronously, so it is in the pipe before the next transaction
 * starts (process.stdout would queue it, and a loop of resolved promises never flushes the queue).
 * The pipe is non-blocking: wait and retry while the reader is behind.
 */
function ack(line: string): void {
  for (;;) {
    try {
      writeSync(1, line);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      Atomics.wait(pause, 0, 0, 2);
    }
  }
}
const store = await openStore(`sqlite:${dbPath}`);
let count = 0;
let tokens = 0;
for (let i = 0; ; i++) {
  const r = await store.reserve({
    bottle: "crashy",
    parents: ["fleet"],
    agent,
    provider: "p",
    estimateTokens: 50,
  });
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  const used = 1 + (i % 97);
  await store.settle(r.id, { inputTokens: used, model: "m" });
  count++;
  tokens += used;
  ack(`${count} ${tokens}\n`);
}
