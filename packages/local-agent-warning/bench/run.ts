// Figures for @bottlekit/local-agent-warning. Run: pnpm --filter @bottlekit/local-agent-warning bench
// Compare ratios within one run, not absolute times across machines.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configFingerprint,
  detectLocalAgentProviders,
  evaluateLocalAgentGate,
  readAck,
  renderLocalAgentWarning,
  writeAck,
} from "../src/index.ts";

function config(n: number) {
  return {
    model_providers: Array.from({ length: n }, (_, i) =>
      i % 10 === 0
        ? { name: `agent-${i}`, model: `claude-cli/m${i}` }
        : { model: `openai/gpt-${i}` },
    ),
  };
}

async function time(label: string, runs: number, fn: () => unknown | Promise<unknown>) {
  for (let i = 0; i < Math.min(runs, 20); i++) await fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await fn();
  const perRunUs = Number(process.hrtime.bigint() - start) / 1000 / runs;
  console.log(`${label.padEnd(48)} ${perRunUs.toFixed(1).padStart(10)} µs/op  (${runs} runs)`);
  return perRunUs;
}

const home = await mkdtemp(join(tmpdir(), "law-bench-"));
try {
  const small = config(1_000);
  const large = config(10_000);
  const a = await time("detect, 1,000 entries", 200, () => detectLocalAgentProviders(small));
  const b = await time("detect, 10,000 entries", 20, () => detectLocalAgentProviders(large));
  console.log(
    `${"detect scaling 10x entries -> time ratio".padEnd(48)} ${(b / a).toFixed(2).padStart(10)}`,
  );

  const env = { PATH: process.env["PATH"] ?? "" };
  const cfg = { model_providers: [{ model: "claude-cli/sonnet" }, { model: "openai/gpt-4o" }] };
  await evaluateLocalAgentGate({ config: cfg, env, home, ackFlag: true });
  await time("gate, already acknowledged (read + PATH lookup)", 500, () =>
    evaluateLocalAgentGate({ config: cfg, env, home, interactive: false }),
  );
  const withSettings = {
    ...env,
    CLAUDE_CLI_TOOLS: "Read,Grep,Bash",
    CLAUDE_CLI_CWD: "/srv/work",
    CLAUDE_CLI_HOME: "/home/agent",
    CLAUDE_CLI_RUN_AS: "nobody",
  };
  const settingsHome = join(home, "settings");
  await evaluateLocalAgentGate({
    config: cfg,
    env: withSettings,
    home: settingsHome,
    ackFlag: true,
  });
  await time("gate, already acknowledged, all four settings set", 500, () =>
    evaluateLocalAgentGate({
      config: cfg,
      env: withSettings,
      home: settingsHome,
      interactive: false,
    }),
  );
  await time("configFingerprint", 20_000, () =>
    configFingerprint({
      interface: "claude-cli",
      binary: "claude",
      binaryPath: "/usr/bin/claude",
      permissionMode: "default",
      settings: { tools: "Bash,Grep,Read", cwd: "/srv/work", home: "/home/agent", runAs: "nobody" },
    }),
  );
  await time("readAck", 1_000, () => readAck({ home }));
  await time("writeAck (lock + fsync + rename)", 100, () =>
    writeAck(
      [{ interface: "claude-cli", binary: "claude", binaryPath: null, permissionMode: "x" }],
      {
        home,
      },
    ),
  );
  const warn = await evaluateLocalAgentGate({
    config: cfg,
    env: { PATH: "" },
    home: join(home, "fresh"),
    interactive: true,
  });
  await time("render warning panel", 2_000, () =>
    renderLocalAgentWarning(warn.pending, { color: true }),
  );
} finally {
  await rm(home, { recursive: true, force: true });
}
