/**
 * Loads the peer suites from `../shared/peer/` (relative to the repository root) and measures a
 * scanner against them. Used by test/peer.test.ts and bench/run.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { RE2JS } from "re2js";
import YAML from "yaml";
import { ANYWHERE, TOKEN_RULES } from "../src/rules.ts";
import type { Finding } from "../src/scan.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../../..");
export const peerDir = resolve(repoRoot, "../shared/peer");

const providerOf = new Map(TOKEN_RULES.map((r) => [r.id, r.provider]));

export function requirePeerDir(): string {
  if (
    !existsSync(join(peerDir, "noseyparker-rules")) ||
    !existsSync(join(peerDir, "secretlint-recommend"))
  ) {
    throw new Error(
      `peer test data is missing: expected ${peerDir}/noseyparker-rules and ${peerDir}/secretlint-recommend ` +
        "(the shared/ folder must sit beside the repository clone)",
    );
  }
  return peerDir;
}

/**
 * Nosey Parker rule id -> the token kinds (our rule ids) that rule describes. Rules not listed are
 * uncovered. A negative example is a false positive when it is reported as one of these kinds
 * (strict per-provider counts are reported too).
 */
export const NOSEYPARKER_KINDS: Record<string, readonly string[]> = {
  "np.adafruit.1": ["adafruit-io-key"],
  "np.age.2": ["age-secret-key"],
  "np.anthropic.1": ["anthropic-api-key"],
  "np.atlassian.1": ["atlassian-api-token"],
  "np.aws.1": ["aws-access-key-id"],
  "np.aws.2": ["aws-secret-access-key"],
  "np.aws.3": ["aws-account-id"],
  "np.aws.4": ["aws-session-token"],
  "np.aws.5": ["aws-mws-auth-token"],
  "np.aws.6": ["aws-access-key-id", "aws-secret-access-key"],
  "np.appsync.1": ["aws-appsync-api-key"],
  "np.azure.1": ["azure-storage-key"],
  "np.azure.2": ["azure-app-config-connection-string"],
  "np.azure.3": ["azure-devops-pat-context"],
  "np.azure.4": ["azure-devops-pat"],
  "np.bitbucket.1": ["bitbucket-app-password"],
  "np.cratesio.1": ["cratesio-api-key"],
  "np.databricks.1": ["databricks-token"],
  "np.dtrack.1": ["dependency-track-api-key"],
  "np.digitalocean.1": ["digitalocean-token"],
  "np.digitalocean.2": ["digitalocean-token"],
  "np.digitalocean.3": ["digitalocean-token"],
  "np.dockerhub.1": ["dockerhub-pat"],
  "np.doppler.1": ["doppler-token"],
  "np.doppler.2": ["doppler-token"],
  "np.doppler.3": ["doppler-token"],
  "np.doppler.4": ["doppler-token"],
  "np.doppler.5": ["doppler-token"],
  "np.doppler.6": ["doppler-token"],
  "np.dropbox.1": ["dropbox-token"],
  "np.dynatrace.1": ["dynatrace-token"],
  "np.facebook.2": ["facebook-access-token"],
  "np.figma.1": ["figma-token"],
  "np.firecrawl.1": ["firecrawl-api-key"],
  "np.github.1": ["github-pat"],
  "np.github.2": ["github-pat"],
  "np.github.3": ["github-pat"],
  "np.github.4": ["github-refresh-token"],
  "np.github.6": ["github-oauth-client-secret"],
  "np.github.7": ["github-fine-grained-pat"],
  "np.gitlab.1": ["gitlab-runner-registration-token"],
  "np.gitlab.2": ["gitlab-token"],
  "np.gitlab.3": ["gitlab-pipeline-trigger-token"],
  "np.google.2": ["gcp-oauth-client-secret"],
  "np.google.4": ["gcp-oauth-access-token"],
  "np.google.5": ["gcp-api-key"],
  "np.grafana.1": ["grafana-token"],
  "np.grafana.2": ["grafana-token"],
  "np.grafana.3": ["grafana-token"],
  "np.groq.1": ["groq-api-key"],
  "np.hashicorp.1": ["hashicorp-vault-legacy-token"],
  "np.hashicorp.2": ["hashicorp-vault-legacy-token"],
  "np.hashicorp.3": ["hashicorp-vault-legacy-token"],
  "np.hashicorp.4": ["hashicorp-vault-token"],
  "np.hashicorp.5": ["hashicorp-vault-token"],
  "np.hashicorp.6": ["hashicorp-vault-token"],
  "np.heroku.1": ["heroku-api-key"],
  "np.http.1": ["http-basic-auth"],
  "np.http.2": ["http-bearer-token"],
  "np.huggingface.1": ["huggingface-token"],
  "np.jina.1": ["jina-api-key"],
  "np.jwt.1": ["jwt"],
  "np.mailchimp.1": ["mailchimp-api-key"],
  "np.mailgun.1": ["mailgun-api-key"],
  "np.msteams.1": ["microsoft-teams-webhook"],
  "np.mongodb.1": ["database-connection-string"],
  "np.newrelic.1": ["newrelic-license-key"],
  "np.newrelic.3": ["newrelic-key"],
  "np.newrelic.4": ["newrelic-key"],
  "np.newrelic.5": ["newrelic-key"],
  "np.newrelic.6": ["newrelic-key"],
  "np.newrelic.7": ["newrelic-key"],
  "np.newrelic.8": ["newrelic-key"],
  "np.newrelic.9": ["newrelic-key"],
  "np.npm.1": ["npm-token"],
  "np.nuget.1": ["nuget-api-key"],
  "np.okta.1": ["okta-token"],
  "np.openai.1": ["openai-api-key"],
  "np.pem.1": ["private-key"],
  "np.pem.2": ["private-key-base64"],
  "np.postgres.1": ["database-connection-string"],
  "np.postman.1": ["postman-api-key"],
  "np.postmark.1": ["postmark-token"],
  "np.pypi.1": ["pypi-token"],
  "np.rubygems.1": ["rubygems-api-key"],
  "np.segment.1": ["segment-token"],
  "np.sendgrid.1": ["sendgrid-api-key"],
  "np.shopify.2": ["shopify-token"],
  "np.shopify.3": ["shopify-token"],
  "np.shopify.4": ["shopify-token"],
  "np.shopify.5": ["shopify-token"],
  "np.slack.2": ["slack-bot-token"],
  "np.slack.3": ["slack-webhook"],
  "np.slack.4": ["slack-user-token"],
  "np.slack.5": ["slack-app-token"],
  "np.slack.6": ["slack-legacy-bot-token"],
  "np.sourcegraph.1": ["sourcegraph-token"],
  "np.square.1": ["square-token"],
  "np.square.2": ["square-token"],
  "np.stackhawk.1": ["stackhawk-api-key"],
  "np.stripe.1": ["stripe-key"],
  "np.stripe.2": ["stripe-key"],
  "np.tavily.1": ["tavily-api-key"],
  "np.telegram.1": ["telegram-bot-token"],
  "np.twilio.1": ["twilio-api-key"],
};

/** secretlint rule folder -> our provider. */
export const SECRETLINT_PROVIDERS: Record<string, string> = {
  "secretlint-rule-1password": "1password",
  "secretlint-rule-anthropic": "anthropic",
  "secretlint-rule-aws": "aws",
  "secretlint-rule-basicauth": "basic-auth-url",
  "secretlint-rule-cloudflare": "cloudflare",
  "secretlint-rule-database-connection-string": "database",
  "secretlint-rule-databricks": "databricks",
  "secretlint-rule-docker": "docker",
  "secretlint-rule-figma": "figma",
  "secretlint-rule-gcp": "gcp",
  "secretlint-rule-github": "github",
  "secretlint-rule-gitlab": "gitlab",
  "secretlint-rule-grafana": "grafana",
  "secretlint-rule-groq": "groq",
  "secretlint-rule-hashicorp-vault": "hashicorp",
  "secretlint-rule-huggingface": "huggingface",
  "secretlint-rule-linear": "linear",
  "secretlint-rule-notion": "notion",
  "secretlint-rule-npm": "npm",
  "secretlint-rule-openai": "openai",
  "secretlint-rule-privatekey": "private-key",
  "secretlint-rule-sendgrid": "sendgrid",
  "secretlint-rule-shopify": "shopify",
  "secretlint-rule-slack": "slack",
  "secretlint-rule-stripe": "stripe",
  "secretlint-rule-tailscale": "tailscale",
  "secretlint-rule-vercel": "vercel",
};

export interface PeerCase {
  suite: "noseyparker" | "secretlint";
  /** Nosey Parker rule id or secretlint rule folder. */
  source: string;
  /** Our provider, or undefined when uncovered. */
  provider: string | undefined;
  name: string;
  text: string;
  /** Nosey Parker: our rule ids for the case's token kind. */
  kinds?: readonly string[] | undefined;
  /** true: must be detected; false: must not be reported as `provider`'s secret / must be clean. */
  positive: boolean;
  /** secretlint ng: expected ranges. */
  ranges?: [number, number][];
  /** secretlint: the case has its own options file (ok cases with options are not scored). */
  hasOptions?: boolean;
}

/**
 * Rust `regex` syntax -> RE2 syntax (re2js), for Nosey Parker's own patterns. RE2 and Rust's
 * crate share inline flags (`(?i)`, `(?i:…)`, `(?s)`, `(?m)`), `(?P<name>…)`, `\A`, `\z` and
 * Unicode classes, so only three things need work: `(?x)` is removed from a leading flag group
 * and, as Rust's parser does, whitespace and `#` comments are dropped everywhere (inside classes
 * too) while `\ ` and `\#` stay literal; `(?# … )` comment groups (which Nosey Parker's rules use
 * as annotations) are dropped; repeat bounds above RE2's 1000 are clamped to 1000 (a match would
 * have to exceed 1000 characters to differ). Anything else Rust-only makes compilation fail, and
 * the rule is listed as untranslated instead of guessed.
 */
export function translateRustRegex(pattern: string): { source: string } | { problem: string } {
  let src = pattern.trim();
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(src);
  let verbose = false;
  if (lead?.[1]?.includes("x")) {
    verbose = true;
    const rest = lead[1].replace(/x/g, "");
    src = (rest ? `(?${rest})` : "") + src.slice(lead[0].length);
  }
  if (/\(\?[a-zA-Z]*x[a-zA-Z-]*[:)]/.test(src)) return { problem: "verbose mode set mid-pattern" };
  {
    let out = "";
    for (let i = 0; i < src.length; i++) {
      const ch = src[i] as string;
      if (ch === "(" && src.startsWith("?#", i + 1)) {
        const close = src.indexOf(")", i);
        if (close === -1) return { problem: "unterminated (?# comment" };
        i = close;
      } else if (verbose && ch === "\\") {
        const next = src[i + 1] ?? "";
        out += next === " " ? " " : next === "#" ? "#" : `\\${next}`;
        i++;
      } else if (verbose && ch === "#") {
        while (i < src.length && src[i] !== "\n") i++;
      } else if (ch === "\\") {
        out += src.slice(i, i + 2);
        i++;
      } else if (!verbose || !/\s/.test(ch)) {
        out += ch;
      }
    }
    src = out.replace(/\{(\d+),(\d+)\}/g, (whole, lo: string, hi: string) =>
      Number(hi) > 1000 ? `{${Math.min(Number(lo), 1000)},1000}` : whole,
    );
  }
  try {
    RE2JS.compile(src);
  } catch (e) {
    return { problem: (e as Error).message.split("\n")[0] ?? "does not compile" };
  }
  return { source: src };
}

export interface PeerRule {
  id: string;
  /** Nosey Parker's own grouping: `np.<namespace>.<n>`. */
  namespace: string;
  /** Our provider for the rule, when we cover it. */
  provider: string | undefined;
  regex: RE2JS | undefined;
  /** Why the pattern could not be used (untranslatable, or it misses its own examples). */
  problem?: string;
}

/** Every Nosey Parker rule with its pattern compiled through `translateRustRegex`. */
export function loadNoseyParkerRules(): PeerRule[] {
  const dir = join(requirePeerDir(), "noseyparker-rules");
  const rules: PeerRule[] = [];
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith(".yml"))
    .sort()) {
    const doc = YAML.parse(readFileSync(join(dir, f), "utf8")) as {
      rules?: { id: string; pattern: string; examples?: string[] }[];
    };
    for (const r of doc.rules ?? []) {
      const kinds = NOSEYPARKER_KINDS[r.id];
      const rule: PeerRule = {
        id: r.id,
        namespace: r.id.split(".")[1] ?? r.id,
        provider: kinds ? providerOf.get(kinds[0] as string) : undefined,
        regex: undefined,
      };
      const t = translateRustRegex(r.pattern);
      if ("problem" in t) rule.problem = t.problem;
      else {
        const re = RE2JS.compile(t.source);
        // A translation that misses one of the rule's own examples is wrong: do not use it.
        const miss = (r.examples ?? []).findIndex((x) => !re.matcher(x).find());
        if (miss === -1) rule.regex = re;
        else rule.problem = `translation misses its own example #${miss}`;
      }
      rules.push(rule);
    }
  }
  return rules;
}

/** Span of a peer rule match: its first capture group (the secret, in Nosey Parker) or the whole match. */
function peerSpans(re: RE2JS, text: string): [number, number][] {
  const spans: [number, number][] = [];
  const m = re.matcher(text);
  let from = 0;
  while (from <= text.length && m.find(from)) {
    const g = re.groupCount() >= 1 && m.start(1) >= 0 ? 1 : 0;
    spans.push([m.start(g), m.end(g)]);
    from = m.end(0) > m.start(0) ? m.end(0) : m.start(0) + 1;
  }
  return spans;
}

export function loadNoseyParker(): PeerCase[] {
  const dir = join(requirePeerDir(), "noseyparker-rules");
  const cases: PeerCase[] = [];
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith(".yml"))
    .sort()) {
    const doc = YAML.parse(readFileSync(join(dir, f), "utf8")) as {
      rules?: { id: string; examples?: string[]; negative_examples?: string[] }[];
    };
    for (const r of doc.rules ?? []) {
      const kinds = NOSEYPARKER_KINDS[r.id];
      const provider = kinds ? providerOf.get(kinds[0] as string) : undefined;
      (r.examples ?? []).forEach((text, i) => {
        cases.push({
          suite: "noseyparker",
          source: r.id,
          provider,
          kinds,
          name: `${r.id}#${i}`,
          text,
          positive: true,
        });
      });
      (r.negative_examples ?? []).forEach((text, i) => {
        cases.push({
          suite: "noseyparker",
          source: r.id,
          provider,
          kinds,
          name: `${r.id}!${i}`,
          text,
          positive: false,
        });
      });
    }
  }
  return cases;
}

export function loadSecretlint(): PeerCase[] {
  const dir = join(requirePeerDir(), "secretlint-recommend");
  const cases: PeerCase[] = [];
  for (const rule of readdirSync(dir).sort()) {
    const ruleDir = join(dir, rule);
    if (!statSync(ruleDir).isDirectory()) continue;
    for (const c of readdirSync(ruleDir).sort()) {
      const positive = c.startsWith("ng.");
      if (!positive && !c.startsWith("ok.")) continue;
      const caseDir = join(ruleDir, c);
      const files = readdirSync(caseDir);
      const input = files.find((x) => x.startsWith("input"));
      if (!input) continue;
      const hasOptions = files.some(
        (x) => x.startsWith(".secretlintrc") || x.startsWith("options."),
      );
      const text = readFileSync(join(caseDir, input)).toString("latin1");
      const utf8 = readFileSync(join(caseDir, input), "utf8");
      let ranges: [number, number][] | undefined;
      if (positive && files.includes("output.json")) {
        const out = JSON.parse(readFileSync(join(caseDir, "output.json"), "utf8")) as {
          messages?: { range: [number, number] }[];
        };
        ranges = (out.messages ?? []).map((m) => m.range);
      }
      cases.push({
        suite: "secretlint",
        source: rule,
        provider: SECRETLINT_PROVIDERS[rule],
        name: `${rule}/${c}`,
        text: input.endsWith(".p12") ? text : utf8,
        positive,
        ranges,
        hasOptions,
      });
    }
  }
  return cases;
}

export interface PeerScore {
  covered: {
    positives: number;
    detected: number;
    negatives: number;
    falsePositives: number;
    /** Nosey Parker negatives reported as any secret of the same provider (stricter). */
    sameProviderReports: number;
    /**
     * Nosey Parker negatives reported as a secret of the same provider where no Nosey Parker rule
     * of that provider matches the reported span: the per-provider false positives.
     */
    providerFalsePositives: number;
    /** secretlint negatives reported only by a prefix-anchored rule through a stuck-on character. */
    boundaryPolicyReports: number;
  };
  boundaryPolicyReports: string[];
  /** Per-provider false positives, by case name. */
  providerFalsePositives: string[];
  /**
   * Same-provider reports not counted because one of Nosey Parker's own rules of that provider
   * (same `np.<namespace>` or mapped to the same provider) matches the span: `case: our rule = np rule`.
   */
  excluded: string[];
  /** Nosey Parker rules whose patterns could not be used for the exclusion, with the reason. */
  untranslated: string[];
  missed: string[];
  falsePositives: string[];
  uncoveredSources: string[];
  uncoveredCases: number;
}

/** Scores one suite. Detection of ng/examples: any blocking token finding (secretlint: overlapping every expected range). */
export function score(
  cases: PeerCase[],
  scan: (text: string) => Finding[],
  peerRules: PeerRule[] = [],
): PeerScore {
  const s: PeerScore = {
    covered: {
      positives: 0,
      detected: 0,
      negatives: 0,
      falsePositives: 0,
      sameProviderReports: 0,
      providerFalsePositives: 0,
      boundaryPolicyReports: 0,
    },
    boundaryPolicyReports: [],
    missed: [],
    falsePositives: [],
    providerFalsePositives: [],
    excluded: [],
    untranslated: peerRules.filter((r) => r.problem).map((r) => `${r.id} (${r.problem})`),
    uncoveredSources: [],
    uncoveredCases: 0,
  };
  const namespaceOf = new Map(peerRules.map((r) => [r.id, r.namespace]));
  /** Nosey Parker's rules of the case's provider: its namespace, or mapped to the same provider. */
  const peerRulesFor = (c: PeerCase) =>
    peerRules.filter(
      (r) =>
        r.regex &&
        (r.namespace === namespaceOf.get(c.source) ||
          (r.provider !== undefined && r.provider === c.provider)),
    );
  const uncovered = new Set<string>();
  for (const c of cases) {
    if (!c.provider) {
      uncovered.add(c.source);
      s.uncoveredCases++;
      continue;
    }
    const findings = scan(c.text).filter((f) => f.severity === "block");
    if (c.positive) {
      s.covered.positives++;
      let ok = findings.length > 0;
      if (ok && c.ranges && c.ranges.length > 0) {
        ok = c.ranges.every(([a, b]) => findings.some((f) => f.start < b && f.end > a));
      }
      if (ok) s.covered.detected++;
      else s.missed.push(c.name);
    } else {
      if (c.suite === "secretlint" && c.hasOptions) continue;
      s.covered.negatives++;
      const same = findings.filter((f) => providerOf.get(f.rule) === c.provider);
      if (same.length > 0) s.covered.sameProviderReports++;
      if (c.suite === "noseyparker" && same.length > 0) {
        const peers = peerRulesFor(c).map((r) => ({
          id: r.id,
          spans: peerSpans(r.regex as RE2JS, c.text),
        }));
        let unexplained = false;
        for (const f of same) {
          const by = peers.find((p) => p.spans.some(([a, b]) => a < f.end && b > f.start));
          if (by) s.excluded.push(`${c.name}: ${f.rule} = ${by.id}`);
          else unexplained = true;
        }
        if (unexplained) {
          s.covered.providerFalsePositives++;
          s.providerFalsePositives.push(c.name);
        }
      }
      // Reports that exist only because a prefix-anchored rule is found wherever it starts (issue
      // 17: a character stuck to a token must not hide it) are counted apart: secretlint's `ok`
      // cases include exactly such boundary tests, which this scanner reports on purpose.
      const policy = findings.filter((f) => byBoundaryPolicy(f, c.text));
      if (c.suite === "secretlint" && policy.length > 0 && policy.length === findings.length) {
        s.covered.boundaryPolicyReports++;
        s.covered.negatives--; // neither a false positive nor a clean negative: counted apart
        s.boundaryPolicyReports.push(c.name);
        continue;
      }
      const bad =
        c.suite === "secretlint"
          ? findings.length > 0
          : findings.some((f) => c.kinds?.includes(f.rule) === true);
      if (bad) {
        s.covered.falsePositives++;
        s.falsePositives.push(c.name);
      }
    }
  }
  s.uncoveredSources = [...uncovered].sort();
  return s;
}

const WORD = /[A-Za-z0-9_]/;
/** A finding of a prefix-anchored rule with a word character stuck before or after it. */
function byBoundaryPolicy(f: Finding, text: string): boolean {
  if (!ANYWHERE.has(f.rule)) return false;
  return WORD.test(text[f.start - 1] ?? "") || WORD.test(text[f.end] ?? "");
}

const pct = (a: number, b: number) => (b ? (100 * a) / b : 0).toFixed(1);

export function formatScore(name: string, s: PeerScore): string {
  const c = s.covered;
  if (name !== "noseyparker" && s.excluded.length === 0 && s.untranslated.length === 0) {
    return [
      `${name}: recall ${pct(c.detected, c.positives)}% (${c.detected}/${c.positives}), ` +
        `false positives ${pct(c.falsePositives, c.negatives)}% (${c.falsePositives}/${c.negatives})`,
      `  missed: ${s.missed.join(", ") || "none"}`,
      `  false positives: ${s.falsePositives.join(", ") || "none"}`,
      `  reported on purpose (a real-looking token with a character stuck to it; secretlint counts these as ok): ${c.boundaryPolicyReports}/${c.negatives + c.boundaryPolicyReports}: ${s.boundaryPolicyReports.join(", ") || "none"}`,
      `  false positives if those count too: ${pct(c.falsePositives + c.boundaryPolicyReports, c.negatives + c.boundaryPolicyReports)}% (${c.falsePositives + c.boundaryPolicyReports}/${c.negatives + c.boundaryPolicyReports})`,
      `  uncovered (${s.uncoveredCases} cases): ${s.uncoveredSources.join(", ")}`,
    ].join("\n");
  }
  return [
    `${name}: recall ${pct(c.detected, c.positives)}% (${c.detected}/${c.positives})`,
    `  false positives per token kind: ${pct(c.falsePositives, c.negatives)}% (${c.falsePositives}/${c.negatives}): ${s.falsePositives.join(", ") || "none"}`,
    `  false positives per provider: ${pct(c.providerFalsePositives, c.negatives)}% (${c.providerFalsePositives}/${c.negatives}): ${s.providerFalsePositives.join(", ") || "none"}`,
    `    (${c.sameProviderReports} negatives reported as their provider; reports a Nosey Parker rule of that provider also matches are not counted:)`,
    ...s.excluded.map((e) => `    excluded ${e}`),
    `  Nosey Parker rules not usable for that check: ${s.untranslated.join(", ") || "none"}`,
    `  missed: ${s.missed.join(", ") || "none"}`,
    `  uncovered (${s.uncoveredCases} cases): ${s.uncoveredSources.join(", ")}`,
  ].join("\n");
}
