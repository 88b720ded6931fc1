import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface WorkerResult {
  index: number;
  settled: Record<string, number>;
  refused: number;
  maxOver: number;
  errors: string[];
  started: number;
  finished: number;
  /** CPU time (user + system) of the worker process while it ran its cycles. */
  cpuMs: number;
}

const PACKAGE_DIR = fileURLToPath(new URL("../..", import.meta.url));

/** Start `script` (a TS file under test/workers) in a real Node process through tsx. */
export function spawnTs(
  script: string,
  args: string[],
  stdin: "pipe" | "ignore" = "pipe",
): ChildProcess {
  return spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@bottlekit/source",
      fileURLToPath(new URL(script, import.meta.url)),
      ...args,
    ],
    { cwd: PACKAGE_DIR, stdio: [stdin, "pipe", "pipe"] },
  );
}

/** Read stdout lines of a child as they arrive. */
export function lines(child: ChildProcess, onLine: (line: string) => void): void {
  let buf = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/**
 * Run `count` cycle workers on one database at once: wait until all are ready, release them
 * together, and collect their results.
 */
export async function runCycleWorkers(
  dbPath: string,
  count: number,
  cycles: number,
  estimate = 10,
  inFlight = 1,
): Promise<WorkerResult[]> {
  const children = Array.from({ length: count }, (_, i) =>
    spawnTs("./cycles.ts", [dbPath, String(i), String(cycles), String(estimate), String(inFlight)]),
  );
  let ready = 0;
  const stderr: string[] = children.map(() => "");
  const results = children.map(
    (child, i) =>
      new Promise<WorkerResult>((resolve, reject) => {
        child.stderr?.setEncoding("utf8");
        child.stderr?.on("data", (d: string) => {
          stderr[i] += d;
        });
        let result: WorkerResult | undefined;
        lines(child, (line) => {
          if (line === "ready") {
            ready++;
            if (ready === count) for (const c of children) c.stdin?.write("go\n");
          } else if (line.startsWith("{")) {
            result = JSON.parse(line) as WorkerResult;
          }
        });
        child.on("error", reject);
        child.on("exit", (code) => {
          if (code === 0 && result !== undefined) resolve(result);
          else reject(new Error(`worker ${i} exited with ${code}: ${stderr[i]}`));
        });
      }),
  );
  return Promise.all(results);
}
