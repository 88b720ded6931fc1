import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { openStore, type UsageEvent } from "@bottlekit/budget-store";
import {
  createFakeUpstream,
  type FakeUpstream,
  type RecordedRequest,
  type TempHome,
} from "@bottlekit/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { homeWith, md } from "../../test/helpers.ts";
import { readAudit, readFrozen } from "./sessions.ts";
import { agentProject, collect, runBottle, spawnBottle } from "./test-helpers.ts";

/**
 * The real Codex CLI (pinned devDependency, `codex exec`) under `bottle run` with no controller
 * running: bottle run starts the gateway with its proxy door in-process, so Codex's calls to
 * https://api.openai.com/v1/responses (through the sandbox's only way out, the egress proxy,
 * trusting the bottle CA) run the gateway's pipeline: metered into the home's store against the
 * bottle's budgets, the real key injected in place of the placeholder Codex holds. The embedded
 * gateway's config sends the openai provider to a local server speaking Responses SSE.
 */
const REAL_KEY = `sk-proj-${"C".repeat(48)}meteredkey`;

function codexLauncher(): string {
  const pkg = createRequire(import.meta.url).resolve("@openai/codex/package.json");
  return path.join(path.dirname(pkg), "bin", "codex.js");
}

const BOTTLE = (cutoff: string) =>
  md(
    [
      "agent_provider:",
      "  name: codex",
      "  credentials: [OPENAI_API_KEY]",
      `cutoff: ${cutoff}`,
      "exec_policy:",
      "  rules: [policy.rules]",
    ].join("\n"),
  );

let home: TempHome;
let project: string;
let fake: FakeUpstream;
let gatewayConfig: string;

beforeAll(async () => {
  fake = await createFakeUpstream({ requireKey: REAL_KEY });
  home = await homeWith({
    "policy.rules":
      'prefix_rule(pattern = ["rm"], decision = "forbidden", justification = "no deleting")\n',
    "bottles/metered.md": BOTTLE("cutoff"),
    "agents/coder.md": md("bottle: metered\nmodel: gpt-5-codex"),
    "bottles/icebox.md": BOTTLE("freeze"),
    "agents/freezer.md": md("bottle: icebox\nmodel: gpt-5-codex"),
  });
  gatewayConfig = path.join(home.dir, "gateway.yaml");
  fs.writeFileSync(
    gatewayConfig,
    [
      "model_providers:",
      "  - model: openai/*",
      `    base_url: ${fake.url}/v1`,
      "    access_key: $OPENAI_API_KEY",
      "",
    ].join("\n"),
  );
  project = agentProject();
}, 60_000);

afterAll(async () => {
  await fake?.close();
  await home?.cleanup();
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

function codexArgs(agent: string, prompt: string, extra: string[] = []): string[] {
  return [
    "run",
    agent,
    "--home",
    home.dir,
    "--cwd",
    project,
    "--agent-bin",
    codexLauncher(),
    ...extra,
    "--",
    "exec",
    "--skip-git-repo-check",
    prompt,
  ];
}

function codexEnv(): NodeJS.ProcessEnv {
  return { OPENAI_API_KEY: REAL_KEY, HOME: os.homedir(), BOTTLEKIT_GATEWAY_CONFIG: gatewayConfig };
}

interface Totals {
  calls: number;
  tokens: number;
  input: number;
  output: number;
  cacheRead: number;
  reasoning: number;
}

/** What the stand-in reported over the Responses calls it answered (input includes cached). */
function reported(requests: RecordedRequest[]): Totals {
  const t: Totals = { calls: 0, tokens: 0, input: 0, output: 0, cacheRead: 0, reasoning: 0 };
  for (const q of requests) {
    if (q.api !== "openai-responses" || q.usage === undefined || !q.completed) continue;
    t.calls++;
    t.tokens += q.usage.input + q.usage.output;
    t.input += q.usage.input;
    t.output += q.usage.output;
    t.cacheRead += q.usage.cacheRead ?? 0;
    t.reasoning += q.usage.reasoning ?? 0;
  }
  return t;
}

function ledger(events: UsageEvent[]): Totals {
  const t: Totals = { calls: 0, tokens: 0, input: 0, output: 0, cacheRead: 0, reasoning: 0 };
  for (const e of events) {
    t.calls++;
    t.tokens += e.tokens;
    t.input += e.inputTokens;
    t.output += e.outputTokens;
    t.cacheRead += e.cacheReadTokens;
    t.reasoning += e.reasoningTokens;
  }
  return t;
}

async function withStore<T>(fn: (s: Awaited<ReturnType<typeof openStore>>) => Promise<T>) {
  const store = await openStore(undefined, { home: home.dir });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe("Codex under bottle run, metered by the embedded gateway", () => {
  it("the answer reaches the user and the store's ledger equals the upstream's reported usage (the built bin: both bundled files)", async () => {
    const before = fake.requests.length;
    fake.enqueue({
      text: "The answer is 42.",
      usage: { input: 1234, output: 56, cacheRead: 200, reasoning: 7 },
    });
    fake.setDefaultReply({ text: "The answer is 42." });
    // As a user runs it: the controller's file (gateway, proxy, model catalogs, HTTP client)
    // loaded by the run's file once the sandbox is spawned.
    const r = await runBottle(codexArgs("coder", "what is the answer?"), codexEnv(), "built");
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out.trim()).toBe("The answer is 42.");
    expect(r.code).toBe(0);
    const served = fake.requests.slice(before);
    const calls = served.filter((q) => q.api === "openai-responses");
    expect(calls.length).toBeGreaterThan(0);
    // The real key was injected by the gateway; Codex held a placeholder.
    expect(calls.every((q) => q.headers["authorization"] === `Bearer ${REAL_KEY}`)).toBe(true);
    expect(r.out + r.err).not.toContain(REAL_KEY);
    const want = reported(served);
    expect(want.calls).toBeGreaterThanOrEqual(1);
    expect(want.input).toBeGreaterThanOrEqual(1234);
    const events = await withStore((s) => s.events({ bottle: "metered" }));
    expect(ledger(events)).toEqual(want);
    expect(events.every((e) => e.provider === "openai" && e.agent === "coder")).toBe(true);
    expect(events.every((e) => !e.usageMissing)).toBe(true);
  }, 180_000);

  it("a budget the first call spends freezes the live agent (snapshot, then stop); run --resume with a larger budget restores the project and goes on, metered exactly", async () => {
    const work = agentProject();
    try {
      const git = (...args: string[]) =>
        execFileSync("git", ["-c", "safe.directory=*", "-C", work, ...args], {
          encoding: "utf8",
        }).trim();
      git("init", "-q");
      fs.writeFileSync(path.join(work, "README.md"), "project\n");
      git("add", "README.md");
      git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init");
      // Reading this FIFO blocks until a writer opens it, and none ever does.
      execFileSync("mkfifo", ["-m", "0666", path.join(work, "gate.fifo")]);
      const st = fs.statSync(work);
      execFileSync("chown", ["-R", `${st.uid}:${st.gid}`, work]);
      const before = fake.requests.length;
      fake.enqueue(
        {
          // Codex's unified exec tool: the agent's work lands in the project.
          toolCalls: [
            {
              id: "call_f0",
              name: "exec_command",
              arguments: JSON.stringify({ cmd: "echo work-in-progress > work.txt" }),
            },
          ],
          usage: { input: 1000, output: 10 },
        },
        {
          // The call that spends the budget asks for a command that waits: only the freeze
          // ends it.
          toolCalls: [
            {
              id: "call_f1",
              name: "exec_command",
              arguments: JSON.stringify({ cmd: "cat gate.fifo" }),
            },
          ],
          usage: { input: 2_000_000, output: 20 },
        },
      );
      fake.setDefaultReply({ text: "should not be asked" });
      const args = (extra: string[]) => [
        ...codexArgs("freezer", "do the work", extra).map((a) => (a === project ? work : a)),
        "-s",
        "danger-full-access",
      ];
      const run = collect(spawnBottle(args(["--budget", "openai=1000000"]), codexEnv()));
      const r = await run.done;
      expect(r.err).toMatch(/frozen \(bottle icebox budget for openai spent/);
      expect(r.code).toBe(3);
      const sessionId = /resume with: bottle run --resume (\S+)/.exec(r.err)?.[1] ?? "";
      const frozen = readFrozen(home.dir, sessionId);
      expect(frozen?.snapshot.kind).toBe("git");
      expect(git("show", `refs/bottlekit/freeze/${sessionId}:work.txt`)).toBe("work-in-progress");
      const freezes = readAudit(home.dir).filter((a) => a.bottle === "icebox");
      expect(freezes.map((a) => [a.action, a.by])).toEqual([["freeze", "budget"]]);
      const served = fake.requests.slice(before);
      // The first tool's result went back; nothing after the crossing reached the upstream.
      expect(served.some((q) => q.rawBody.includes("call_f0"))).toBe(true);
      expect(served.some((q) => q.rawBody.includes("call_f1"))).toBe(false);
      const firstRun = await withStore((s) => s.events({ bottle: "icebox" }));
      expect(ledger(firstRun)).toEqual(reported(served));
      expect(ledger(firstRun).input).toBeGreaterThanOrEqual(2_001_000);
      expect((await withStore(async (s) => s.cutoffState("icebox")))?.policy).toBe("freeze");

      // The operator raises the budget and resumes (the agent CLI and its arguments come from the
      // frozen record): the project's work is restored, the freeze lifted (audited), and the
      // agent answers, metered against the same bottle.
      fs.rmSync(path.join(work, "work.txt"));
      const resumedAt = fake.requests.length;
      fake.enqueue({ text: "Resumed and done.", usage: { input: 500, output: 12 } });
      fake.setDefaultReply({ text: "Resumed and done." });
      const resumed = await runBottle(
        ["run", "--resume", sessionId, "--home", home.dir, "--budget", "openai=10000000"],
        codexEnv(),
      );
      expect(resumed.err).toContain("startup probe");
      expect(resumed.out.trim()).toBe("Resumed and done.");
      expect(resumed.code).toBe(0);
      expect(fs.readFileSync(path.join(work, "work.txt"), "utf8")).toBe("work-in-progress\n");
      const trail = await withStore((s) => s.actions({ bottle: "icebox" }));
      expect(trail.map((a) => [a.action, a.by])).toEqual([
        ["freeze", "budget"],
        ["restore", expect.any(String)],
      ]);
      expect(trail[1]?.reason).toBe(`session ${sessionId}: bottle run --resume`);
      const all = await withStore((s) => s.events({ bottle: "icebox" }));
      expect(ledger(all.slice(firstRun.length))).toEqual(reported(fake.requests.slice(resumedAt)));
      expect(resumed.out + resumed.err + r.out + r.err).not.toContain(REAL_KEY);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);
});
