/**
 * bottlekit's own token rules. Each rule names literal keywords (matched case-insensitively by one
 * Aho-Corasick pass); its regex only runs on small windows around keyword hits. Every regex uses
 * bounded quantifiers and no nested repetition (`boundedRegexProblem`, checked for every rule by
 * the test suite), so V8's backtracking engine stays linear on attacker input.
 *
 * Conventions: `secret` is the capture group holding the secret (default: whole match);
 * `maxLength` bounds the whole match and sets the window around each keyword hit.
 */
export interface TokenRule {
  id: string;
  provider: string;
  description: string;
  /** Lower-case literals; every match contains at least one of them. */
  keywords: readonly string[];
  pattern: RegExp;
  /** Capture group of the secret (0 = whole match). */
  secret?: number;
  /**
   * Every match continues after its keyword with at least this many
   * characters of [A-Za-z0-9_.+/=~-]. Hits followed by fewer are dropped before the regex runs,
   * which keeps floods of near-miss prefixes cheap.
   */
  minTail?: number;
  /**
   * Per keyword: a higher `minTail` for keywords that can only start the stricter alternative of
   * the pattern (Twilio's `sk` is always followed by 32 hex digits; its `twilio` keyword is not).
   */
  keywordMinTail?: Readonly<Record<string, number>>;
  /**
   * For rules whose matches start at their keyword: every match holds one of these characters
   * after the keyword (a URL's `@`, an assignment's `=` or `:`). Hits with none of them within
   * `maxLength` are dropped before the regex runs; one native search per character set finds the
   * next occurrence and is reused by later hits, so the check costs O(n) per scan in total.
   */
  afterAny?: string;
  /** For `window` rules: every match has at least this many such characters before its keyword. */
  minHead?: number;
  /** Upper bound of a match's length, in characters. */
  maxLength: number;
  /**
   * Matches start exactly at a keyword (the default): the regex runs once, sticky, at each
   * keyword hit. `window: true` rules have the keyword inside the match; they run on a window of
   * `maxLength` characters around each hit instead.
   */
  window?: boolean;
  /** Drop matches whose secret is a known placeholder word (`password`, `${VAR}`, ...). */
  placeholderCheck?: boolean;
  /**
   * For rules whose matches start at their keyword: every match holds `length` consecutive
   * characters of [A-Za-z0-9+/] starting at most `within` characters after the keyword ends (a
   * PEM body's first line after its header). When the layer's base64 runs are known (the
   * projection pass collects them), hits with no run that long in reach are dropped before the
   * regex runs: a flood of headers with short bodies costs no regex attempt per header.
   */
  bodyRun?: { length: number; within: number };
  /**
   * For rules whose matches start at their keyword and are the whole secret, and whose pattern
   * reads nothing outside the character before a match, the match and the character after it:
   * a hit whose window (those characters) equals the window of the rule's last regex match
   * matches the same length, so a flood of equal matches (JWT headers chained by dots) costs a
   * comparison per hit, not a regex run.
   */
  repeatMemo?: boolean;
}

// Boundary helpers (ASCII, explicit so behaviour does not depend on the `u` flag).
const B = "(?<![A-Za-z0-9_])"; // start boundary like \b before a word character
const E = "(?![A-Za-z0-9_])"; // end boundary
const E_DASH = "(?![A-Za-z0-9_-])";

function rx(source: string, flags = ""): RegExp {
  return new RegExp(source, `g${flags}`);
}

/** A line break: real, or written as a JSON/C escape (`\\n`, `\\r\\n`). */
const LB = "(?:\\\\r\\\\n|\\\\n|\\r?\\n)";
/** One optional armor header line (`Version: GnuPG v2`, `Comment: …`, `Proc-Type: 4,ENCRYPTED`). */
const PEM_HEADER = `(?:[A-Za-z-]{2,20}: [^\\r\\n\\\\]{0,200}${LB})?`;
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const ASSIGN = `["'\`]?[ \\t]{0,20}(?::|=>|:=|=|,)[ \\t]{0,20}["'\`]?`;

const BASE_RULES: readonly TokenRule[] = [
  // --- source hosting -----------------------------------------------------------------------
  {
    id: "github-pat",
    provider: "github",
    description: "GitHub classic token (personal, OAuth, user-to-server, server-to-server)",
    keywords: ["ghp_", "gho_", "ghu_", "ghs_"],
    pattern: rx(`${B}gh[opus]_[A-Za-z0-9]{36}${E}`),
    maxLength: 40,
    minTail: 36,
  },
  {
    id: "github-app-installation-token",
    provider: "github",
    description: "GitHub App installation token carrying a JWT",
    keywords: ["ghs_"],
    pattern: rx(
      `${B}ghs_[0-9]{1,12}_ey[A-Za-z0-9_-]{10,600}\\.ey[A-Za-z0-9_-]{10,2000}\\.[A-Za-z0-9_-]{10,1000}`,
    ),
    maxLength: 3700,
    minTail: 30,
  },
  {
    id: "github-refresh-token",
    provider: "github",
    description: "GitHub refresh token",
    keywords: ["ghr_"],
    pattern: rx(`${B}ghr_[A-Za-z0-9]{76}${E}`),
    maxLength: 80,
    minTail: 76,
  },
  {
    id: "github-fine-grained-pat",
    provider: "github",
    description: "GitHub fine-grained personal access token",
    keywords: ["github_pat_"],
    pattern: rx(
      `${B}github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}${E}|${B}github_pat_[A-Za-z0-9_]{82}${E}`,
    ),
    maxLength: 93,
    minTail: 82,
  },
  {
    id: "github-oauth-client-secret",
    provider: "github",
    description: "GitHub OAuth app client secret in context",
    keywords: ["github"],
    pattern: rx(
      `github[A-Za-z0-9_.-]{0,20}(?:secret|key)[A-Za-z0-9_.-]{0,10}${ASSIGN}([0-9a-f]{40})${E}`,
      "i",
    ),
    secret: 1,
    maxLength: 130,
    afterAny: ":=,",
  },
  {
    id: "gitlab-token",
    provider: "gitlab",
    description: "GitLab personal, project, group, deploy, feed or CI token",
    keywords: [
      "glpat-",
      "gldt-",
      "glft-",
      "glsoat-",
      "glrt-",
      "glcbt-",
      "glimt-",
      "glagent-",
      "gloas-",
    ],
    pattern: rx(
      `${B}(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glagent|gloas)-[A-Za-z0-9_-]{20,64}(?:\\.[A-Za-z0-9_-]{2,12})?(?:\\.[A-Za-z0-9_-]{2,12})?${E_DASH}`,
    ),
    maxLength: 110,
    minTail: 20,
  },
  {
    id: "gitlab-pipeline-trigger-token",
    provider: "gitlab",
    description: "GitLab pipeline trigger token",
    keywords: ["glptt-"],
    pattern: rx(`${B}glptt-[0-9a-f]{40}${E}`),
    maxLength: 46,
    minTail: 40,
  },
  {
    id: "gitlab-runner-registration-token",
    provider: "gitlab",
    description: "GitLab runner registration token",
    keywords: ["gr1348941"],
    pattern: rx(`${B}GR1348941[A-Za-z0-9_-]{20}${E_DASH}`),
    maxLength: 29,
    minTail: 20,
  },
  {
    id: "bitbucket-app-password",
    provider: "bitbucket",
    description: "Bitbucket app password",
    keywords: ["atbb"],
    pattern: rx(`${B}ATBB[A-Za-z0-9]{32}${E}`),
    maxLength: 36,
    minTail: 32,
  },
  {
    id: "atlassian-api-token",
    provider: "atlassian",
    description: "Atlassian cloud API token",
    keywords: ["atatt3"],
    pattern: rx(`${B}ATATT3[A-Za-z0-9_=-]{20,300}=[0-9A-F]{8}${E}`),
    maxLength: 320,
    minTail: 29,
  },
  // --- cloud -----------------------------------------------------------------------------------
  {
    id: "aws-access-key-id",
    provider: "aws",
    description: "AWS access key id",
    keywords: ["akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "a3t"],
    pattern: rx(`${B}(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}${E}`),
    maxLength: 20,
    minTail: 16,
  },
  {
    id: "aws-secret-access-key",
    provider: "aws",
    description: "AWS secret access key next to an AWS key name",
    keywords: ["aws"],
    pattern: rx(
      `aws_?(?:secret)?_?(?:access)?_?(?:key)?["'\`]?[ \\t]{0,30}(?::|=>|=)[ \\t]{0,30}["'\`]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
      "i",
    ),
    secret: 1,
    maxLength: 130,
    afterAny: ":=",
  },
  {
    id: "aws-account-id",
    provider: "aws",
    description: "AWS account id next to its key name",
    keywords: ["aws"],
    pattern: rx(
      `aws_?account_?id["'\`]?[ \\t]{0,30}(?::|=>|=)[ \\t]{0,30}["'\`]?([0-9]{4}-?[0-9]{4}-?[0-9]{4})(?![0-9])`,
      "i",
    ),
    secret: 1,
    maxLength: 90,
    afterAny: ":=",
  },
  {
    id: "aws-session-token",
    provider: "aws",
    description: "AWS session token next to its key name",
    keywords: ["aws"],
    pattern: rx(
      `aws.?(?:session.?)?token["'\`]?[ \\t]{0,30}(?::|=>|=)[ \\t]{0,30}["'\`]?([A-Za-z0-9/+=]{100,1200})(?![A-Za-z0-9/+=])`,
      "i",
    ),
    secret: 1,
    maxLength: 1300,
    afterAny: ":=",
  },
  {
    id: "aws-mws-auth-token",
    provider: "aws",
    description: "Amazon MWS auth token",
    keywords: ["amzn.mws."],
    pattern: rx(`amzn\\.mws\\.${UUID}`, "i"),
    maxLength: 45,
    minTail: 36,
  },
  {
    id: "aws-appsync-api-key",
    provider: "aws",
    description: "AWS AppSync API key",
    keywords: ["da2-"],
    pattern: rx(`${B}da2-[a-z0-9]{26}${E}`),
    maxLength: 30,
    minTail: 26,
  },
  {
    id: "gcp-api-key",
    provider: "gcp",
    description: "Google API key",
    keywords: ["aiza"],
    pattern: rx(`${B}AIza[A-Za-z0-9_-]{35}${E_DASH}`),
    maxLength: 39,
    minTail: 35,
  },
  {
    id: "gcp-oauth-client-secret",
    provider: "gcp",
    description: "Google OAuth client secret",
    keywords: ["gocspx-"],
    pattern: rx(`${B}GOCSPX-[A-Za-z0-9_-]{28}${E_DASH}`),
    maxLength: 35,
    minTail: 28,
  },
  {
    id: "gcp-oauth-access-token",
    provider: "gcp",
    description: "Google OAuth access token",
    keywords: ["ya29."],
    pattern: rx(`${B}ya29\\.[A-Za-z0-9_-]{20,1024}${E_DASH}`),
    maxLength: 1029,
    minTail: 20,
  },
  {
    id: "gcp-service-account-key",
    provider: "gcp",
    description: "Google service-account key file (private key in JSON)",
    keywords: ["service_account"],
    pattern: rx(
      `"type"\\s{0,5}:\\s{0,5}"service_account"[^]{0,400}?"private_key"\\s{0,5}:\\s{0,5}"-----BEGIN`,
    ),
    maxLength: 480,
    window: true,
  },
  {
    id: "azure-storage-key",
    provider: "azure",
    description: "Azure storage or service bus key in a connection string",
    keywords: ["accountkey", "sharedaccesskey"],
    pattern: rx(
      `(?:AccountKey|SharedAccessKey)\\s{0,3}=\\s{0,3}([A-Za-z0-9+/]{40,100}={0,2})`,
      "i",
    ),
    secret: 1,
    maxLength: 130,
    afterAny: "=",
  },
  {
    id: "azure-app-config-connection-string",
    provider: "azure",
    description: "Azure App Configuration connection string",
    keywords: [".azconfig.io"],
    pattern: rx(
      `https://[A-Za-z0-9-]{1,63}\\.azconfig\\.io;\\s?Id=[^;\\s]{4,40};\\s?Secret=([A-Za-z0-9+/]{36,60}={0,2})`,
    ),
    secret: 1,
    maxLength: 200,
    window: true,
  },
  {
    id: "azure-devops-pat",
    provider: "azure",
    description: "Azure DevOps personal access token",
    keywords: ["azdo"],
    pattern: rx(`${B}[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}${E}`),
    maxLength: 84,
    minHead: 76,
    minTail: 4,
    window: true,
  },
  {
    id: "azure-devops-pat-context",
    provider: "azure",
    description: "Azure DevOps personal access token next to its name",
    keywords: ["ado_pat", "pat_token", "personal", "$token"],
    pattern: rx(
      `(?:ADO_PAT|pat_token|personal_?access_?token|\\$token)\\s{0,5}=\\s{0,5}["']([a-z0-9]{52})["']`,
      "i",
    ),
    secret: 1,
    maxLength: 90,
    afterAny: "=",
  },
  {
    id: "azure-client-secret",
    provider: "azure",
    description: "Microsoft Entra (Azure AD) client secret",
    keywords: ["q~"],
    pattern: rx(`${B}[A-Za-z0-9_~.-]{3}\\dQ~[A-Za-z0-9_~.-]{31,34}${E_DASH}`),
    maxLength: 40,
    minHead: 4,
    minTail: 31,
    window: true,
  },
  {
    id: "digitalocean-token",
    provider: "digitalocean",
    description: "DigitalOcean access, personal or refresh token",
    keywords: ["doo_v1_", "dop_v1_", "dor_v1_"],
    pattern: rx(`${B}do[opr]_v1_[a-f0-9]{64}${E}`, "i"),
    maxLength: 71,
    minTail: 64,
  },
  {
    id: "cloudflare-api-token",
    provider: "cloudflare",
    description: "Cloudflare API token or key (prefixed)",
    keywords: ["cfat_", "cfut_", "cfk_"],
    pattern: rx(`${B}(?:cfat|cfut|cfk)_[A-Za-z0-9]{40}[0-9a-f]{8}${E}`),
    maxLength: 54,
    minTail: 48,
  },
  {
    id: "heroku-api-key",
    provider: "heroku",
    description: "Heroku API key next to its name",
    keywords: ["heroku"],
    pattern: rx(`heroku.{0,20}key.{0,20}\\b(${UUID})${E}`, "i"),
    secret: 1,
    maxLength: 90,
  },
  {
    id: "heroku-api-key-v2",
    provider: "heroku",
    description: "Heroku API key (HRKU prefix)",
    keywords: ["hrku-"],
    pattern: rx(`${B}HRKU-AA[0-9a-zA-Z_-]{58}${E_DASH}`),
    maxLength: 65,
    minTail: 60,
  },
  {
    id: "vercel-token",
    provider: "vercel",
    description: "Vercel token",
    keywords: ["vcp_", "vci_", "vca_", "vcr_", "vck_"],
    pattern: rx(`${B}vc[pcirak]_[A-Za-z0-9]{24,80}${E}`),
    maxLength: 84,
    minTail: 24,
  },
  {
    id: "databricks-token",
    provider: "databricks",
    description: "Databricks personal access token",
    keywords: ["dapi"],
    pattern: rx(`${B}dapi[a-fA-F0-9]{32}(?:-\\d{1,3})?${E}`),
    maxLength: 40,
    minTail: 32,
  },
  {
    id: "tailscale-key",
    provider: "tailscale",
    description: "Tailscale API, auth, client, SCIM or webhook key",
    keywords: ["tskey-"],
    pattern: rx(`(?<![A-Za-z])tskey-[a-z]{1,20}-[A-Za-z0-9]{6,20}-[A-Za-z0-9]{16,64}${E}`),
    maxLength: 110,
    minTail: 25,
  },
  {
    id: "hashicorp-vault-token",
    provider: "hashicorp",
    description: "HashiCorp Vault service, batch or recovery token (>= 1.10)",
    keywords: ["hvs.", "hvb.", "hvr."],
    pattern: rx(`${B}hv[sbr]\\.[A-Za-z0-9_-]{24,500}${E_DASH}`),
    maxLength: 505,
    minTail: 24,
  },
  {
    id: "hashicorp-vault-legacy-token",
    provider: "hashicorp",
    description: "HashiCorp Vault token (< 1.10) next to a vault/token name",
    keywords: ["vault", "token", "secret", "hashicorp"],
    pattern: rx(
      `(?:hashicorp|vault|token|secret)["':= ]{1,5}([sbr]\\.[A-Za-z0-9_-]{24,128})${E_DASH}`,
      "i",
    ),
    secret: 1,
    maxLength: 150,
    afterAny: ".",
  },
  {
    id: "hashicorp-terraform-token",
    provider: "hashicorp",
    description: "Terraform Cloud API token",
    keywords: [".atlasv1."],
    pattern: rx(`${B}[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_=-]{60,70}${E_DASH}`),
    maxLength: 95,
    minHead: 14,
    minTail: 60,
    window: true,
  },
  {
    id: "doppler-token",
    provider: "doppler",
    description: "Doppler token",
    keywords: ["dp.ct.", "dp.pt.", "dp.st.", "dp.sa.", "dp.scim.", "dp.audit."],
    pattern: rx(
      `${B}dp\\.(?:ct|pt|st|sa|scim|audit)\\.(?:[a-z0-9_-]{2,35}\\.)?[A-Za-z0-9]{40,44}${E}`,
    ),
    maxLength: 90,
    minTail: 40,
  },
  // --- AI providers --------------------------------------------------------------------------
  {
    id: "anthropic-api-key",
    provider: "anthropic",
    description: "Anthropic API key",
    keywords: ["sk-ant-api"],
    pattern: rx(`(?<![A-Za-z0-9_-])sk-ant-api0[34]-[A-Za-z0-9_-]{80,100}${E_DASH}`),
    maxLength: 115,
    minTail: 80,
  },
  {
    id: "anthropic-admin-key",
    provider: "anthropic",
    description: "Anthropic admin API key",
    keywords: ["sk-ant-admin"],
    pattern: rx(`(?<![A-Za-z0-9_-])sk-ant-admin01-[A-Za-z0-9_-]{80,100}${E_DASH}`),
    maxLength: 118,
    minTail: 83,
  },
  {
    id: "anthropic-oauth-token",
    provider: "anthropic",
    description: "Anthropic (Claude) OAuth token",
    keywords: ["sk-ant-oat", "sk-ant-ort"],
    pattern: rx(`(?<![A-Za-z0-9_-])sk-ant-o[ar]t01-[A-Za-z0-9_-]{80,100}${E_DASH}`),
    maxLength: 118,
    minTail: 83,
  },
  {
    id: "openai-api-key",
    provider: "openai",
    description: "OpenAI API key (legacy, project, service account, admin)",
    keywords: ["t3blbkfj"],
    pattern: rx(
      `(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{16,160}T3BlbkFJ[A-Za-z0-9_-]{16,160}${E_DASH}`,
    ),
    maxLength: 340,
    minHead: 16,
    minTail: 16,
    window: true,
  },
  {
    id: "groq-api-key",
    provider: "groq",
    description: "Groq API key",
    keywords: ["gsk_"],
    pattern: rx(`${B}gsk_[A-Za-z0-9]{52}${E_DASH}`),
    maxLength: 60,
    minTail: 52,
  },
  {
    id: "huggingface-token",
    provider: "huggingface",
    description: "Hugging Face access token",
    keywords: ["hf_", "api_org_"],
    pattern: rx(`${B}(?:hf_[A-Za-z]{34}|api_org_[A-Za-z]{34})${E}`),
    maxLength: 43,
    minTail: 34,
  },
  {
    id: "xai-api-key",
    provider: "xai",
    description: "xAI API key",
    keywords: ["xai-"],
    pattern: rx(`${B}xai-[A-Za-z0-9]{80}${E}`),
    maxLength: 84,
    minTail: 80,
  },
  {
    id: "perplexity-api-key",
    provider: "perplexity",
    description: "Perplexity API key",
    keywords: ["pplx-"],
    pattern: rx(`${B}pplx-[A-Za-z0-9]{48}${E}`),
    maxLength: 53,
    minTail: 48,
  },
  {
    id: "replicate-api-token",
    provider: "replicate",
    description: "Replicate API token",
    keywords: ["r8_"],
    pattern: rx(`${B}r8_[A-Za-z0-9]{37}${E}`),
    maxLength: 40,
    minTail: 37,
  },
  {
    id: "tavily-api-key",
    provider: "tavily",
    description: "Tavily API key",
    keywords: ["tvly-"],
    pattern: rx(`${B}tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}${E}`),
    maxLength: 42,
    minTail: 32,
  },
  {
    id: "jina-api-key",
    provider: "jina",
    description: "Jina API key",
    keywords: ["jina_"],
    pattern: rx(`${B}jina_[A-Za-z0-9]{60}${E}`),
    maxLength: 65,
    minTail: 60,
  },
  {
    id: "firecrawl-api-key",
    provider: "firecrawl",
    description: "Firecrawl API key",
    keywords: ["fc-"],
    pattern: rx(`${B}fc-[a-f0-9]{32}${E}`),
    maxLength: 35,
    minTail: 32,
  },
  // --- messaging and collaboration -------------------------------------------------------------
  {
    id: "slack-bot-token",
    provider: "slack",
    description: "Slack bot token",
    keywords: ["xoxb-"],
    pattern: rx(`${B}xoxb-[0-9]{8,14}-[0-9]{8,14}-[A-Za-z0-9]{8,64}${E}`),
    maxLength: 100,
    minTail: 26,
  },
  {
    id: "slack-legacy-bot-token",
    provider: "slack",
    description: "Slack legacy bot token",
    keywords: ["xoxb-"],
    pattern: rx(`${B}xoxb-[0-9]{8,14}-(?=[0-9]{0,23}[A-Za-z])[A-Za-z0-9]{20,30}${E}`),
    maxLength: 50,
    minTail: 29,
  },
  {
    id: "slack-user-token",
    provider: "slack",
    description: "Slack user token",
    keywords: ["xoxp-"],
    pattern: rx(`${B}xoxp-[0-9]{8,14}-[0-9]{8,14}-[0-9]{8,14}-[A-Za-z0-9]{16,64}${E}`),
    maxLength: 120,
    minTail: 43,
  },
  {
    id: "slack-token",
    provider: "slack",
    description: "Slack workspace, refresh, configuration or short-form token",
    keywords: ["xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxr-", "xoxs-", "xoxe"],
    pattern: rx(
      `${B}(?:xox[aors]|xoxe\\.xox[bp]|xoxe)-(?:\\d-)?[0-9]{8,14}-[A-Za-z0-9-]{8,160}${E}|${B}xox[bp]-[0-9]{8,14}-[0-9]{8,14}(?![A-Za-z0-9-])`,
    ),
    maxLength: 190,
    minTail: 17,
  },
  {
    id: "slack-app-token",
    provider: "slack",
    description: "Slack app-level token",
    keywords: ["xapp-"],
    pattern: rx(
      `${B}xapp-\\d-[A-Z0-9]{9,12}-\\d{10,16}-[a-f0-9]{32,80}${E}|${B}xapp-[0-9]{12}-[A-Za-z0-9/+]{24}${E}`,
    ),
    maxLength: 120,
    minTail: 37,
  },
  {
    id: "slack-webhook",
    provider: "slack",
    description: "Slack incoming webhook URL",
    keywords: ["hooks.slack.com"],
    pattern: rx(
      `https://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_]{5,12}/[A-Za-z0-9_]{5,14}/[A-Za-z0-9_]{8,48}`,
      "i",
    ),
    maxLength: 120,
    minTail: 30,
    window: true,
  },
  {
    id: "discord-webhook",
    provider: "discord",
    description: "Discord webhook URL",
    keywords: ["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
    pattern: rx(
      `https://(?:ptb\\.|canary\\.)?discord(?:app)?\\.com/api/webhooks/\\d{17,20}/[A-Za-z0-9_-]{60,72}`,
    ),
    maxLength: 140,
    minTail: 70,
    window: true,
  },
  {
    id: "microsoft-teams-webhook",
    provider: "microsoft-teams",
    description: "Microsoft Teams incoming webhook URL",
    keywords: ["webhook.office.com", "outlook.office.com/webhook"],
    pattern: rx(
      `https://(?:outlook\\.office\\.com/webhook|[a-z0-9-]{1,40}\\.webhook\\.office\\.com/webhookb2)/${UUID}@${UUID}/IncomingWebhook/[a-f0-9]{32}/${UUID}`,
      "i",
    ),
    maxLength: 260,
    minTail: 30,
    window: true,
  },
  {
    id: "telegram-bot-token",
    provider: "telegram",
    description: "Telegram bot token",
    keywords: [":aa"],
    pattern: rx(`${B}\\d{8,12}:AA[A-Za-z0-9_-]{32,33}${E_DASH}`),
    maxLength: 48,
    minHead: 8,
    minTail: 32,
    window: true,
  },
  {
    id: "notion-token",
    provider: "notion",
    description: "Notion integration token",
    keywords: ["ntn_", "secret_"],
    pattern: rx(`${B}(?:ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})${E}`),
    maxLength: 50,
    minTail: 43,
  },
  {
    id: "linear-api-key",
    provider: "linear",
    description: "Linear API key",
    keywords: ["lin_api_"],
    pattern: rx(`${B}lin_api_[A-Za-z0-9]{40,44}${E}`),
    maxLength: 48,
    minTail: 40,
  },
  {
    id: "figma-token",
    provider: "figma",
    description: "Figma personal access token",
    keywords: ["figd_", "figma"],
    keywordMinTail: { figd_: 40 },
    pattern: rx(
      `${B}figd_[A-Za-z0-9_-]{40,60}${E_DASH}|figma.{0,20}\\b([0-9a-f]{4}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})${E}`,
      "i",
    ),
    maxLength: 80,
  },
  {
    id: "onepassword-service-account-token",
    provider: "1password",
    description: "1Password service account token",
    keywords: ["ops_eyj"],
    pattern: rx(`${B}ops_eyJ[A-Za-z0-9+/=]{250,2000}`),
    maxLength: 2010,
    minTail: 250,
  },
  {
    id: "postman-api-key",
    provider: "postman",
    description: "Postman API key",
    keywords: ["pmak-"],
    pattern: rx(`${B}PMAK-[A-Za-z0-9]{24}-[A-Za-z0-9]{34}${E}`),
    maxLength: 64,
    minTail: 59,
  },
  // --- payments and commerce -------------------------------------------------------------------
  {
    id: "stripe-key",
    provider: "stripe",
    description: "Stripe secret or restricted key",
    keywords: ["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
    pattern: rx(`${B}[sr]k_(?:live|test)_[A-Za-z0-9]{24,247}${E}`),
    maxLength: 256,
    minTail: 24,
  },
  {
    id: "stripe-webhook-secret",
    provider: "stripe",
    description: "Stripe webhook signing secret",
    keywords: ["whsec_"],
    pattern: rx(`${B}whsec_[A-Za-z0-9]{32,64}${E}`),
    maxLength: 70,
    minTail: 32,
  },
  {
    id: "square-token",
    provider: "square",
    description: "Square access token or OAuth secret",
    keywords: ["sq0atp-", "sq0csp-", "eaaa"],
    pattern: rx(
      `${B}(?:sq0atp-[A-Za-z0-9_-]{22}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{60})${E_DASH}`,
    ),
    maxLength: 64,
    minTail: 22,
  },
  {
    id: "shopify-token",
    provider: "shopify",
    description: "Shopify app secret or access token",
    keywords: ["shpss_", "shpat_", "shpca_", "shppa_"],
    pattern: rx(`${B}shp(?:ss|at|ca|pa)_[A-Za-z0-9]{32,40}${E}`),
    maxLength: 46,
    minTail: 32,
  },
  {
    id: "twilio-api-key",
    provider: "twilio",
    description: "Twilio API key SID or account SID with auth token context",
    keywords: ["twilio", "sk"],
    pattern: rx(`${B}SK[0-9a-fA-F]{32}${E}|twilio.{0,20}\\b(sk[a-f0-9]{32})${E}`, "i"),
    maxLength: 60,
    keywordMinTail: { sk: 32 },
  },
  {
    id: "sendgrid-api-key",
    provider: "sendgrid",
    description: "SendGrid API key",
    keywords: ["sg."],
    pattern: rx(`(?<![A-Za-z0-9_-])SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_])`),
    maxLength: 69,
    minTail: 66,
  },
  {
    id: "mailgun-api-key",
    provider: "mailgun",
    description: "Mailgun API key",
    keywords: ["mailgun", "mg"],
    pattern: rx(`(?:mailgun|mg).{0,20}key-([a-z0-9]{32})${E}`, "i"),
    secret: 1,
    maxLength: 60,
  },
  {
    id: "mailchimp-api-key",
    provider: "mailchimp",
    description: "Mailchimp API key",
    keywords: ["-us"],
    pattern: rx(`${B}[a-f0-9]{32}-us[0-9]{1,3}${E}`),
    maxLength: 38,
    minHead: 32,
    minTail: 1,
    window: true,
  },
  {
    id: "postmark-token",
    provider: "postmark",
    description: "Postmark server or account token in context",
    keywords: ["postmark"],
    pattern: rx(`postmark[A-Za-z0-9_-]{0,20}.{0,10}\\b(${UUID})${E}`, "i"),
    secret: 1,
    maxLength: 80,
  },
  // --- package registries and CI ---------------------------------------------------------------
  {
    id: "npm-token",
    provider: "npm",
    description: "npm access token",
    keywords: ["npm_"],
    pattern: rx(`${B}npm_[A-Za-z0-9]{36}${E}`),
    maxLength: 40,
    minTail: 36,
  },
  {
    id: "npm-legacy-authtoken",
    provider: "npm",
    description: "npm legacy auth token in .npmrc",
    keywords: ["_authtoken"],
    pattern: rx(`_authToken\\s{0,3}=\\s{0,3}(${UUID}|[A-Za-z0-9+/=_-]{30,100})`, "i"),
    secret: 1,
    maxLength: 120,
  },
  {
    id: "pypi-token",
    provider: "pypi",
    description: "PyPI upload token",
    keywords: ["pypi-ageichlwas5vcmc"],
    pattern: rx(`${B}pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,300}${E_DASH}`),
    maxLength: 320,
    minTail: 50,
  },
  {
    id: "rubygems-api-key",
    provider: "rubygems",
    description: "RubyGems API key",
    keywords: ["rubygems_"],
    pattern: rx(`${B}rubygems_[a-f0-9]{48}${E}`),
    maxLength: 57,
    minTail: 48,
  },
  {
    id: "nuget-api-key",
    provider: "nuget",
    description: "NuGet API key",
    keywords: ["oy2"],
    pattern: rx(`${B}oy2[a-z0-9]{43}${E}`),
    maxLength: 46,
    minTail: 43,
  },
  {
    id: "cratesio-api-key",
    provider: "crates.io",
    description: "crates.io API key",
    keywords: ["cio"],
    pattern: rx(`${B}cio[A-Za-z0-9]{32}${E}`),
    maxLength: 35,
    minTail: 32,
  },
  {
    id: "dockerhub-pat",
    provider: "docker",
    description: "Docker Hub personal access token",
    keywords: ["dckr_pat_", "dckr_oat_"],
    pattern: rx(`${B}dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,36}${E_DASH}`),
    maxLength: 45,
    minTail: 27,
  },
  {
    id: "grafana-token",
    provider: "grafana",
    description: "Grafana API, cloud or service-account token",
    keywords: ["eyjrijoi", "glc_", "glsa_"],
    pattern: rx(
      `${B}(?:eyJrIjoi[A-Za-z0-9]{60,100}={0,2}|glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})(?![A-Za-z0-9_=])`,
    ),
    maxLength: 410,
    minTail: 32,
  },
  {
    id: "sourcegraph-token",
    provider: "sourcegraph",
    description: "Sourcegraph access token",
    keywords: ["sgp_"],
    pattern: rx(`${B}sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}${E}`),
    maxLength: 62,
    minTail: 40,
  },
  {
    id: "newrelic-key",
    provider: "newrelic",
    description: "New Relic user, admin, insights or REST key, or Pixie key",
    keywords: ["nrak-", "nraa-", "nrii-", "nriq-", "nrra-", "px-api-", "px-dep-"],
    pattern: rx(
      `${B}(?:NRAK-[A-Z0-9]{27}|NRAA-[a-f0-9]{27}|NRI[IQ]-[A-Za-z0-9_-]{32}|NRRA-[a-f0-9]{42}|px-(?:api|dep)-${UUID})${E_DASH}`,
      "i",
    ),
    maxLength: 50,
    minTail: 27,
  },
  {
    id: "newrelic-license-key",
    provider: "newrelic",
    description: "New Relic license key",
    keywords: ["nral"],
    pattern: rx(`${B}[a-z0-9]{6}[a-f0-9]{30}NRAL${E_DASH}`, "i"),
    maxLength: 40,
    minHead: 36,
    window: true,
  },
  {
    id: "dynatrace-token",
    provider: "dynatrace",
    description: "Dynatrace API token",
    keywords: ["dt0"],
    pattern: rx(`${B}dt0[a-zA-Z][0-9]{2}\\.[A-Z0-9]{24}\\.[A-Z0-9]{64}${E}`),
    maxLength: 96,
    minTail: 90,
  },
  {
    id: "okta-token",
    provider: "okta",
    description: "Okta API token in context",
    keywords: ["okta", "ssws"],
    pattern: rx(`(?:okta|ssws)[^]{0,40}?\\b(00[A-Za-z0-9_-]{39}[A-Za-z0-9_])${E_DASH}`, "i"),
    secret: 1,
    maxLength: 90,
  },
  {
    id: "dropbox-token",
    provider: "dropbox",
    description: "Dropbox short-lived access token",
    keywords: ["sl."],
    pattern: rx(`${B}sl\\.[A-Za-z0-9_-]{130,152}${E_DASH}`),
    maxLength: 155,
    minTail: 130,
  },
  {
    id: "age-secret-key",
    provider: "age",
    description: "age identity (secret key)",
    keywords: ["age-secret-key-1"],
    pattern: rx(`${B}AGE-SECRET-KEY-1[0-9A-Z]{58}${E}`),
    maxLength: 74,
    minTail: 58,
  },
  {
    id: "adafruit-io-key",
    provider: "adafruit",
    description: "Adafruit IO key",
    keywords: ["aio_"],
    pattern: rx(`${B}aio_[A-Za-z0-9]{28}${E}`),
    maxLength: 32,
    minTail: 28,
  },
  {
    id: "segment-token",
    provider: "segment",
    description: "Segment public API token",
    keywords: ["sgp_"],
    pattern: rx(`${B}sgp_[A-Za-z0-9]{64}${E}`),
    maxLength: 68,
    minTail: 64,
  },
  {
    id: "stackhawk-api-key",
    provider: "stackhawk",
    description: "StackHawk API key",
    keywords: ["hawk."],
    pattern: rx(`${B}hawk\\.[A-Za-z0-9_-]{20}\\.[A-Za-z0-9_-]{20}${E_DASH}`),
    maxLength: 46,
    minTail: 41,
  },
  {
    id: "dependency-track-api-key",
    provider: "dependency-track",
    description: "Dependency-Track API key",
    keywords: ["odt_"],
    pattern: rx(`${B}odt_[A-Za-z0-9]{32,255}${E}`),
    maxLength: 260,
    minTail: 32,
  },
  {
    id: "facebook-access-token",
    provider: "facebook",
    description: "Facebook access token",
    keywords: ["eaacedeose0cba"],
    pattern: rx(`${B}EAACEdEose0cBA[A-Za-z0-9]{20,400}${E}`),
    maxLength: 420,
    minTail: 20,
  },
  // --- generic credential shapes ---------------------------------------------------------------
  {
    id: "jwt",
    provider: "jwt",
    description: "JSON Web Token",
    keywords: ["eyj"],
    pattern: rx(
      `(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{12,1000}\\.ey[A-Za-z0-9_-]{12,4000}\\.[A-Za-z0-9_-]{12,1000}(?![A-Za-z0-9_-])`,
    ),
    maxLength: 6010,
    minTail: 40,
    // the lookbehind reads the character before; each part's run stops at the first character
    // outside [A-Za-z0-9_-], and a part that fails fails there (the dots are outside the class),
    // so a match reads nothing past the character after it
    repeatMemo: true,
  },
  {
    id: "private-key",
    provider: "private-key",
    description: "PEM or PGP private key block (header lines allowed, END line optional)",
    keywords: ["-----begin"],
    // The body may not run into another BEGIN line (`-` only when not starting `-----BEGIN`), so
    // a flood of headers costs one body's length per header, not 12,000 characters each.
    pattern: rx(
      `-----BEGIN[ A-Z0-9]{0,25}PRIVATE KEY(?: BLOCK)?-----[ \\t"'+,]{0,8}${LB}?${PEM_HEADER}${PEM_HEADER}${PEM_HEADER}${PEM_HEADER}[ \\t"'+,]{0,8}${LB}?[ \\t"']{0,4}[A-Za-z0-9+/]{40}(?:\\\\r|\\\\n|[A-Za-z0-9+/=\\s"',:]|-(?!----BEGIN)){0,12000}`,
    ),
    maxLength: 13200,
    // the most the pattern reads between the keyword and the body: the rest of the BEGIN line
    // (25 + 11 + 6 + 5), padding (8), a line break (4, as `\\r\\n`), four header lines
    // (20 + 2 + 200 + 4 each), padding (8), a line break (4) and quotes or spaces (4)
    bodyRun: { length: 40, within: 47 + 8 + 4 + 4 * 226 + 8 + 4 + 4 },
  },
  {
    id: "private-key-der",
    provider: "private-key",
    description:
      "Base64 DER private key without PEM lines (PKCS#1 RSA, PKCS#8 RSA/EC/Ed25519, SEC1 EC)",
    keywords: ["mii", "mig", "mih", "mhccaqee", "mc4caqaw"],
    pattern: rx(
      `(?:MII[A-Za-z0-9+/]{3}IBAAKC|MII[A-Za-z0-9+/]{3}IBADANBgkqhkiG9w0BAQEFAASC|MHcCAQEE|MC4CAQAwBQYDK2VwBCIEI|MI[GH][A-Za-z0-9+/]AgEAMB[AM]GByqGSM49AgE)[A-Za-z0-9+/]{24}`,
    ),
    maxLength: 80,
    minTail: 29,
  },
  {
    id: "private-key-base64",
    provider: "private-key",
    description: "Base64-encoded PEM private key",
    keywords: ["ls0tls1crudjtib"],
    pattern: rx(
      `LS0tLS1CRUdJTiB[A-Za-z0-9+/]{0,30}(?:UFJJVkFURSBLRVkt|BSSVZBVEUgS0VZL|QUklWQVRFIEtFWS0)[A-Za-z0-9+/=]{40,16000}`,
    ),
    maxLength: 16100,
    minTail: 40,
  },
  {
    id: "url-password",
    provider: "basic-auth-url",
    description: "URL with a user name and password",
    keywords: [
      "http://",
      "https://",
      "ftp://",
      "ftps://",
      "ws://",
      "wss://",
      "ssh://",
      "sftp://",
      "smtp://",
      "smtps://",
      "amqp://",
      "amqps://",
      "ldap://",
      "ldaps://",
    ],
    pattern: rx(
      `\\b(?:https?|ftps?|wss?|ssh|sftp|smtps?|amqps?|ldaps?)://([A-Za-z0-9._~%!$&'()*+,;=-]{1,80}):([^\\s:@/"'\`<>(){}\\[\\]]{3,120})@[A-Za-z0-9.-]{1,253}`,
      "i",
    ),
    secret: 2,
    maxLength: 480,
    afterAny: "@",
    placeholderCheck: true,
  },
  {
    id: "database-connection-string",
    provider: "database",
    description: "Database connection URI with a password",
    keywords: [
      "mongodb",
      "postgres",
      "mysql",
      "mariadb",
      "redis",
      "rediss",
      "amqp",
      "sqlserver",
      "cockroachdb",
    ],
    pattern: rx(
      `\\b(?:mongodb(?:\\+srv)?|postgres(?:ql)?|mysql(?:x)?|mariadb|rediss?|amqps?|sqlserver|cockroachdb)://([A-Za-z0-9._~%!$&'()*+,;=-]{0,80}):([^\\s/"'\`<>{}\\[\\]]{3,120})@[A-Za-z0-9][A-Za-z0-9.:,_-]{0,252}`,
      "i",
    ),
    secret: 2,
    maxLength: 480,
    afterAny: "@",
    placeholderCheck: true,
  },
  {
    id: "database-password-flag",
    provider: "database",
    description: "Database password on a command line or in an env assignment",
    keywords: ["--password=", "pgpassword=", "pg_password=", "mysql_pwd="],
    pattern: rx(`(?:--password=|PGPASSWORD=|PG_PASSWORD=|MYSQL_PWD=)([^\\s'"]{4,120})`, "i"),
    secret: 1,
    maxLength: 140,
    placeholderCheck: true,
  },
  {
    id: "http-basic-auth",
    provider: "http-auth",
    description: "HTTP Basic authorization header value",
    keywords: ["authorization"],
    pattern: rx(
      `Authorization["']?\\s{0,3}[:=]\\s{0,3}["']?Basic\\s{1,3}([A-Za-z0-9+/]{8,500}={0,2})(?![A-Za-z0-9+/=])`,
      "i",
    ),
    secret: 1,
    maxLength: 540,
  },
  {
    id: "http-bearer-token",
    provider: "http-auth",
    description: "HTTP Bearer authorization header value",
    keywords: ["authorization"],
    pattern: rx(
      `Authorization["']?\\s{0,3}[:=]\\s{0,3}["']?Bearer\\s{1,3}([A-Za-z0-9._~+/-]{8,2000}={0,2})(?![A-Za-z0-9._~+/=-])`,
      "i",
    ),
    secret: 1,
    maxLength: 2050,
    placeholderCheck: true,
  },
];

/**
 * Rules whose tokens start with a distinctive prefix (`ghp_`, `AKIA`, `sk-ant-`, `xoxb-`, …) are
 * found wherever they start: a character stuck in front (`x`, `_`, `1`) or after a fixed-length
 * token must not hide it, raw or once decoded. Their boundary assertions are dropped; the prefix
 * and the fixed shape after it keep false positives down (measured in `bench/false-positives.ts`).
 * Rules with short or word-like keywords (`hf_`, `secret_`, `cio`, `sk`) keep their boundaries.
 */
export const ANYWHERE: ReadonlySet<string> = new Set([
  "github-pat",
  "github-app-installation-token",
  "github-refresh-token",
  "github-fine-grained-pat",
  "gitlab-token",
  "gitlab-pipeline-trigger-token",
  "gitlab-runner-registration-token",
  "atlassian-api-token",
  "aws-access-key-id",
  "gcp-api-key",
  "gcp-oauth-client-secret",
  "digitalocean-token",
  "cloudflare-api-token",
  "heroku-api-key-v2",
  "hashicorp-vault-token",
  "anthropic-api-key",
  "anthropic-admin-key",
  "anthropic-oauth-token",
  "openai-api-key",
  "groq-api-key",
  "xai-api-key",
  "perplexity-api-key",
  "tavily-api-key",
  "jina-api-key",
  "slack-bot-token",
  "slack-legacy-bot-token",
  "slack-user-token",
  "slack-token",
  "slack-app-token",
  "linear-api-key",
  "onepassword-service-account-token",
  "postman-api-key",
  "stripe-key",
  "stripe-webhook-secret",
  "shopify-token",
  "sendgrid-api-key",
  "npm-token",
  "pypi-token",
  "rubygems-api-key",
  "dockerhub-pat",
  "grafana-token",
  "sourcegraph-token",
  "newrelic-key",
  "age-secret-key",
  "doppler-token",
  "facebook-access-token",
  "tailscale-key",
]);

const BOUNDARIES = [
  "(?<![A-Za-z0-9_])",
  "(?<![A-Za-z0-9_-])",
  "(?<![A-Za-z])",
  "(?![A-Za-z0-9_])",
  "(?![A-Za-z0-9_-])",
  "(?![A-Za-z0-9_=])",
];

/**
 * The patterns of the ANYWHERE rules as written, boundaries included (rule id → pattern): a match
 * that only the unanchored pattern finds has a character stuck to it.
 */
export const BOUNDED_PATTERNS: ReadonlyMap<string, RegExp> = new Map(
  BASE_RULES.filter((r) => ANYWHERE.has(r.id)).map((r) => [r.id, r.pattern]),
);

function unanchored(rule: TokenRule): TokenRule {
  if (!ANYWHERE.has(rule.id)) return rule;
  let source = rule.pattern.source;
  for (const b of BOUNDARIES) source = source.split(b).join("");
  return { ...rule, pattern: new RegExp(source, rule.pattern.flags) };
}

/** The built-in token rules. */
export const TOKEN_RULES: readonly TokenRule[] = [
  ...BASE_RULES.map(unanchored),
  {
    id: "aws-access-key-id-lowercase",
    provider: "aws",
    description: "AWS access key id written in lower case (the case an agent can change)",
    keywords: ["akia", "asia", "aroa", "aida"],
    pattern: rx("(?:akia|asia|aroa|aida)(?=[a-z]{0,15}[2-7])[a-z2-7]{16}(?![a-z0-9])"),
    maxLength: 20,
    minTail: 16,
  },
];

/** Values that look like placeholders or documentation, not credentials. */
const PLACEHOLDER_WORDS = new Set([
  "password",
  "passwd",
  "pwd",
  "mypassword",
  "yourpassword",
  "your_password",
  "changeme",
  "example",
  "token",
  "xxxx",
  "****",
]);

/**
 * True when `value` holds 8 or more letters or digits in a row, letters among them, that each
 * repeat the previous one or follow it in the alphabet, case ignored: `AAAAAAAA`, `abcdefgh`,
 * `aAbBcCdD`, `aBcDeF12`. Documentation and test fixtures write tokens that way; a real token is
 * random, and the chance of such a stretch in a random 40-character base62 token is about 1 in
 * 10^7. (Digits alone do not count: numeric ids inside tokens are less random than that.)
 */
export function looksSequential(value: string): boolean {
  let run = 1;
  let letters = 0;
  let prev = -2;
  for (let i = 0; i < value.length; i++) {
    let c = value.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    const letter = c >= 97 && c <= 122;
    if (!letter && !(c >= 48 && c <= 57)) {
      run = 1;
      letters = 0;
      prev = -2;
      continue;
    }
    const step = c - prev;
    if (step === 0 || step === 1) run++;
    else {
      run = 1;
      letters = 0;
    }
    if (letter) letters++;
    if (run >= 8 && letters > 0) return true;
    prev = c;
  }
  return false;
}

export function looksLikePlaceholder(value: string): boolean {
  const v = value.toLowerCase();
  if (PLACEHOLDER_WORDS.has(v)) return true;
  if (/^[$%{<[]|[}>\]]$/.test(v)) return true; // ${VAR}, {{x}}, <password>, %s
  if (/^(?:your|replace|insert|enter)[_-]?/.test(v) && /pass|secret|token|key/.test(v)) return true;
  if (/^(.)\1+$/.test(v)) return true; // xxxx, 1111
  if (v.length < 4) return true;
  return false;
}

/**
 * A small ReDoS checker for our own patterns: rejects unbounded quantifiers (`*`, `+`, `{n,}`),
 * quantifiers nested inside quantified groups, and backreferences. Patterns that pass try a
 * bounded amount of work per start position, so matching a window is linear in its length.
 */
export function boundedRegexProblem(source: string): string | undefined {
  // stack of groups: does the group contain a quantifier?
  const stack: boolean[] = [];
  let lastWasGroupClose: boolean | undefined;
  let i = 0;
  const n = source.length;
  const markQuantified = (
    innerHasQuantifier: boolean | undefined,
    optional: boolean,
  ): string | undefined => {
    // `(...)?` around a bounded group only doubles the work; any other nesting is refused.
    if (innerHasQuantifier && !optional) return `nested quantifier at ${i}`;
    if (stack.length > 0) stack[stack.length - 1] = true;
    return undefined;
  };
  while (i < n) {
    const c = source[i] as string;
    if (c === "\\") {
      const d = source[i + 1] ?? "";
      if (/[1-9]/.test(d) || d === "k") return `backreference at ${i}`;
      i += 2;
      lastWasGroupClose = undefined;
      continue;
    }
    if (c === "[") {
      i++;
      if (source[i] === "^") i++;
      if (source[i] === "]") i++;
      while (i < n && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      i++;
      lastWasGroupClose = undefined;
      continue;
    }
    if (c === "(") {
      stack.push(false);
      i++;
      if (source[i] === "?") {
        i++;
        if (source[i] === "<" && (source[i + 1] === "=" || source[i + 1] === "!")) i += 2;
        else if (source[i] === "<") {
          while (i < n && source[i] !== ">") i++;
          i++;
        } else i++;
      }
      lastWasGroupClose = undefined;
      continue;
    }
    if (c === ")") {
      const inner = stack.pop() ?? false;
      lastWasGroupClose = inner;
      i++;
      // a group's quantifier state propagates to its parent when it is not itself quantified
      const next = source[i];
      const quantified = next === "?" || next === "{" || next === "*" || next === "+";
      if (!quantified && inner && stack.length > 0) stack[stack.length - 1] = true;
      continue;
    }
    if (c === "*" || c === "+") return `unbounded quantifier \`${c}\` at ${i}`;
    if (c === "?" || c === "{") {
      let j = i + 1;
      if (c === "{") {
        const close = source.indexOf("}", i);
        const body = source.slice(i + 1, close);
        if (!/^\d+(,\d+)?$/.test(body)) {
          if (/^\d+,$/.test(body)) return `unbounded quantifier {${body}} at ${i}`;
          i++;
          continue;
        }
        j = close + 1;
      }
      const problem = markQuantified(lastWasGroupClose, c === "?");
      if (problem) return problem;
      if (source[j] === "?") j++; // lazy
      i = j;
      lastWasGroupClose = undefined;
      continue;
    }
    lastWasGroupClose = undefined;
    i++;
  }
  return undefined;
}
