import fs from "node:fs";
import path from "node:path";
import type { TempHome } from "@bottlekit/test-utils";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { homeWith, md } from "../../test/helpers.ts";
import { agentProject, runBottle } from "../run/test-helpers.ts";

const SECRET = "sk-live-bottletest-0123456789abcdefABCDEF";

let home: TempHome;
let project: string;
beforeEach(async () => {
  home = await homeWith({
    "bottles/dev.md": md(
      "agent_provider:\n  command: [/bin/sh, -c]\nbudget:\n  anthropic:\n    tokens: 1000\n    window: 24h\ncutoff: kill",
    ),
    "bottles/leaky.md": md(
      'env:\n  COPIED: "${MY_API_KEY}"\nagent_provider:\n  command: [/bin/sh, -c]',
    ),
    "agents/coder.md": md("bottle: dev"),
    "agents/leaker.md": md("bottle: leaky"),
  });
  project = agentProject();
});
afterEach(async () => {
  await home.cleanup();
  fs.rmSync(project, { recursive: true, force: true });
});

/** `bottle run coder --budget openai=5k -- <command>` in the test home and project. */
function runCoderWithBudget(command: string, env: NodeJS.ProcessEnv) {
  return runBottle(
    ["run", "coder", "--budget", "openai=5k", "--home", home.dir, "--cwd", project, "--", command],
    env,
  );
}

describe("bottle run", { timeout: 120_000 }, () => {
  it("--dry-run prints binds, env names, routes and budgets, and starts nothing", async () => {
    const r = await runBottle(
      [
        "run",
        "coder",
        "--dry-run",
        "--json",
        "--budget",
        "openai=200k/daily",
        "--home",
        home.dir,
        "--cwd",
        project,
        "--",
        "echo hi",
      ],
      { MY_API_KEY: SECRET },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as Record<string, unknown> & {
      binds: { kind: string; path: string }[];
      budgets: unknown[];
      env: { name: string }[];
    };
    expect(doc["command"]).toEqual(["/bin/sh", "-c", "echo hi"]);
    expect(doc.binds).toContainEqual({ kind: "rw", path: project });
    expect(doc.binds).toContainEqual({ kind: "ro", path: "/" });
    expect(doc.budgets).toEqual([
      { provider: "anthropic", tokens: 1000, window: "daily", source: "manifest" },
      { provider: "openai", tokens: 200000, window: "daily", source: "flag" },
    ]);
    expect(doc["cutoff"]).toBe("kill");
    expect(doc.env.map((e) => e.name)).toContain("HTTPS_PROXY");
    expect(r.out + r.err).not.toContain(SECRET);
    expect(fs.readdirSync(project)).toEqual([]);
  });

  it("runs the command bottled: probe checklist, scrubbed env, the agent's own exit code", async () => {
    const r = await runBottle(
      [
        "run",
        "--home",
        home.dir,
        "--cwd",
        project,
        "--",
        "/bin/sh",
        "-c",
        'echo "user=$(id -u) key=${MY_API_KEY:-none}"; echo made > made.txt; exit 7',
      ],
      { MY_API_KEY: SECRET },
    );
    expect(r.err).toContain("startup probe");
    expect(r.err).toMatch(/✓ socket\(AF_UNIX\) refused/);
    expect(r.err).toMatch(/✓ proxy refuses an undeclared host/);
    expect(r.err).toMatch(/✓ no credential in the environment/);
    expect(r.out).toMatch(/^user=[1-9][0-9]* key=none$/m);
    expect(r.code).toBe(7);
    expect(fs.readFileSync(path.join(project, "made.txt"), "utf8")).toBe("made\n");
  });

  it("aborts with exit 3 before the agent starts when a host credential reaches the env", async () => {
    const r = await runBottle(
      ["run", "leaker", "--home", home.dir, "--cwd", project, "--", "echo started > started.txt"],
      { MY_API_KEY: SECRET },
    );
    expect(r.err).toMatch(/✗ no credential in the environment — host credential found in COPIED/);
    expect(r.code).toBe(3);
    expect(fs.existsSync(path.join(project, "started.txt"))).toBe(false);
    expect(r.out + r.err).not.toContain(SECRET);
  });

  it("refuses a bottle that is cut off with exit 3; the agent never starts, the budgets stay as they were", async () => {
    const cut = await runBottle(
      ["cutoff", "dev", "--reason", "runaway loop", "--home", home.dir],
      {},
    );
    expect(cut.code).toBe(0);
    const r = await runCoderWithBudget("echo started > started.txt", {});
    expect(r.err).toMatch(/bottle dev is cut off \(cutoff, since .*: runaway loop\)/);
    expect(r.err).toContain("hint: bottle restore dev --reason <why>");
    expect(r.code).toBe(3);
    expect(fs.existsSync(path.join(project, "started.txt"))).toBe(false);
    const budgets = await runBottle(["budget", "list", "--json", "--home", home.dir], {});
    expect(budgets.out).not.toContain("openai");
  });

  it("records --budget in the store the embedded gateway enforces from, when its config names one", async () => {
    const other = path.join(home.dir, "other-store.db");
    const config = path.join(home.dir, "gateway.yaml");
    fs.writeFileSync(config, `store: sqlite:${other}\n`);
    const r = await runCoderWithBudget("echo ran > ran.txt", { BOTTLEKIT_GATEWAY_CONFIG: config });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(project, "ran.txt"))).toBe(true);
    // the gateway's store holds the run's budget; the home's store, which it does not read, not
    const there = await runBottle(["budget", "list", "--json", "--home", home.dir], {
      BOTTLEKIT_STORE: other,
    });
    expect(there.code).toBe(0);
    expect(there.out).toContain("openai");
    const home_ = await runBottle(["budget", "list", "--json", "--home", home.dir], {});
    expect(home_.out).not.toContain("openai");
  });

  it("refuses an unknown agent with exit 2", async () => {
    const r = await runBottle(["run", "nobody-here", "--home", home.dir, "--cwd", project], {});
    expect(r.code).toBe(2);
  });
});

describe("bottle run: host problems", () => {
  it("names the install command and exits 2 when bubblewrap is missing", async () => {
    const { bottle } = await import("../../test/helpers.ts");
    const emptyBin = fs.mkdtempSync("/var/tmp/bottle-nobwrap-");
    try {
      const r = await bottle(["run", "--home", home.dir, "--cwd", project, "--", "/bin/true"], {
        PATH: emptyBin,
      });
      expect(r.code).toBe(2);
      expect(r.err).toContain("bubblewrap (bwrap) is not installed");
      expect(r.err).toContain("hint: apt-get install bubblewrap");
    } finally {
      fs.rmSync(emptyBin, { recursive: true, force: true });
    }
  });
});
