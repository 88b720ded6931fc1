/** Deterministic corpora for the bench: realistic 1 MB LLM request bodies and adversarial inputs. */
import { TOKEN_RULES } from "../src/rules.ts";

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    s ^= s + Math.imul(s ^ (s >>> 7), 61 | s);
    return ((s ^ (s >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the a to of and in is for that with on as it be this are by from at or an not was your we can will " +
  "function return const let value error request response model token tokens user assistant message content " +
  "please explain how why code file test build config server client data result list map string number " +
  "async await import export class interface type module package install run deploy cache key secret api"
).split(" ");

const CODE = [
  "const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' } });\n",
  "for (let i = 0; i < items.length; i++) { total += items[i].price * items[i].qty; }\n",
  "if (!config.apiBaseUrl) throw new Error('missing apiBaseUrl; see https://docs.example.com/setup');\n",
  "def handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event)}\n",
  "SELECT id, name, created_at FROM users WHERE org_id = $1 ORDER BY created_at DESC LIMIT 50;\n",
];

/** A chat-completions request body of about `size` characters. */
export function chatBody(size: number, seed = 1): string {
  const r = rng(seed);
  const messages: { role: string; content: string }[] = [];
  let total = 0;
  while (total < size) {
    let content = "";
    const target = 200 + Math.floor(r() * 3000);
    while (content.length < target) {
      if (r() < 0.1) content += CODE[Math.floor(r() * CODE.length)];
      else content += `${WORDS[Math.floor(r() * WORDS.length)]}${r() < 0.08 ? ".\n" : " "}`;
    }
    messages.push({ role: r() < 0.5 ? "user" : "assistant", content });
    total += content.length + 40;
  }
  return JSON.stringify({ model: "claude-sonnet-4", max_tokens: 4096, stream: true, messages });
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
export function knownSecrets(count: number, seed = 7): { name: string; value: string }[] {
  const r = rng(seed);
  const prefixes = [
    "sk-ant-api03-",
    "ghp_",
    "xoxb-",
    "sk-proj-",
    "AKIA",
    "glpat-",
    "npm_",
    "hf_",
    "",
  ];
  return Array.from({ length: count }, (_, i) => {
    let v = prefixes[i % prefixes.length] as string;
    const len = 32 + Math.floor(r() * 40);
    while (v.length < len) v += ALNUM[Math.floor(r() * ALNUM.length)];
    return { name: `SECRET_${i}`, value: v };
  });
}

/**
 * A flat copy of a string built by concatenation and slicing. V8 keeps `out.slice()` as a sliced
 * string, whose every character read costs an indirection; request bodies reach the scanner
 * flat (decoded from bytes), like the JSON.stringify'd normal bodies, so the adversarial inputs
 * must be flat too or the ratio measures V8's string representation rather than the scanner.
 */
function flat(text: string): string {
  return Buffer.from(text, "utf8").toString("utf8");
}

/** Near-miss prefixes: every keyword followed by almost-a-token, repeated to `size`. */
export function nearMiss(size: number, seed = 3): string {
  const r = rng(seed);
  // Rules whose secrets can be as short as the tails below would produce real matches, not near misses.
  const keywords = [
    ...new Set(
      TOKEN_RULES.filter((rule) => rule.id !== "database-password-flag").flatMap(
        (rule) => rule.keywords,
      ),
    ),
  ];
  let out = "";
  while (out.length < size) {
    const k = keywords[Math.floor(r() * keywords.length)] as string;
    let tail = "";
    const n = 1 + Math.floor(r() * 15); // shorter than the tokens the prefixes announce
    for (let i = 0; i < n; i++) tail += ALNUM[Math.floor(r() * ALNUM.length)];
    out += `${k}${tail}${r() < 0.5 ? " " : "\n"}`;
  }
  return flat(out.slice(0, size));
}

/**
 * Fragments of known secrets 11 characters long (one short of a match), repeated. Each fragment is
 * fenced by letters that differ from the secret's neighbouring characters, so no fragment can be
 * extended into a real 12-character match through the projection.
 */
export function knownNearMiss(size: number, secrets: { value: string }[], seed = 5): string {
  const r = rng(seed);
  let out = "";
  // matching folds case, so the fence must differ from the neighbour in either case
  const fence = (not: string | undefined) => (not?.toLowerCase() === "q" ? "z" : "q");
  while (out.length < size) {
    const s = (secrets[Math.floor(r() * secrets.length)] as { value: string }).value;
    const at = 1 + Math.floor(r() * (s.length - 13));
    out += `${fence(s[at - 1])}${s.slice(at, at + 11)}${fence(s[at + 11])} `;
  }
  return flat(out.slice(0, size));
}
