// The starter home that `bottle init` writes. examples/home in the repository is this same tree
// (a test keeps them identical), so what the docs show is what a user gets.

export interface TemplateFile {
  /** Path relative to the home. */
  path: string;
  text: string;
}

export const INIT_TEMPLATES: readonly TemplateFile[] = [
  {
    path: "settings.yml",
    text: `# bottlekit settings for this home. Budgets written in a bottle or an agent are nearer to
# the work and win over the ones here; a run's --budget wins over both.
shutdown: cutoff # what a crossed budget does when it names no policy: cutoff | freeze | kill
budget: # global token budgets per provider, shared by every bottle in this home
  anthropic: { tokens: 5000000, window: monthly }
  openai: { tokens: 5000000, window: monthly }
`,
  },
  {
    path: "bottles/dev.md",
    text: `---
# A bottle says what an agent inside it may reach, hold and spend.
agent_provider: { name: claude, credentials: [ANTHROPIC_API_KEY] } # the key stays on the host
egress:
  routes: # the only hosts the agent can reach; everything else is refused
    - host: api.github.com
      matches: [{ methods: [GET] }] # read-only
    - host: registry.npmjs.org
budget:
  anthropic: { tokens: 2000000, window: 24h }
cutoff: cutoff # when the budget is crossed: cutoff (egress refused) | freeze | kill
exec_policy: { rules: [rules/default.rules] } # relative to this home
---

A development bottle: GitHub read-only, the npm registry, two million Anthropic tokens a day.
`,
  },
  {
    path: "agents/coder.md",
    text: `---
# An agent: which bottle it runs in, which model it uses, and its own budget inside the bottle's.
bottle: dev
model: anthropic/claude-sonnet-4-5
budget: { anthropic: { tokens: 500000 } }
---

You are a careful coding agent. Make small changes, run the tests, and explain what you did.
`,
  },
  {
    path: "rules/default.rules",
    text: `# Exec policy for bottled agents (Codex .rules syntax). Commands no rule matches are asked
# about (prompt); the strictest matching rule wins.
[prefix_rule(pattern = [tool]) for tool in ["ls", "cat", "grep", "rg", "head", "tail", "wc", "pwd"]]
prefix_rule(pattern = ["git", ["status", "diff", "log", "show"]])
prefix_rule(pattern = [["npm", "pnpm"], ["test", "run"]])
prefix_rule(
    pattern = ["git", "push"],
    decision = "forbidden",
    justification = "a human publishes",
)
prefix_rule(pattern = ["rm", ["-rf", "-fr"]], decision = "forbidden", justification = "too broad")
prefix_rule(pattern = ["sudo"], decision = "forbidden", justification = "no root in a bottle")
`,
  },
];
