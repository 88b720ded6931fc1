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

/**
 * `n` characters of `alphabet` from a linear congruential generator seeded with `seed`: the
 * tests' made-up tokens (deterministic, random-looking, the same on every machine).
 */
export function pseudoToken(n: number, alphabet: string, seed: number): string {
  let s = seed;
  let out = "";
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += alphabet[(s >>> 16) % alphabet.length];
  }
  return out;
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

const ENGLISH = (
  "the of and to in is that it was for on are as with his they at be this from have or by one had " +
  "not but what all were when we there can an your which their said if do will each about how up out " +
  "them then she many some so these would other into has more her two like him see time could no make " +
  "than first been its who now people my made over did down only way find use may water long little " +
  "very after words called just where most know get through back much before go good new write our used"
).split(" ");

/** Random English words and sentences, `size` characters: the baseline of the adversarial bench. */
export function englishText(size: number, seed = 11): string {
  const r = rng(seed);
  let out = "";
  let sentence = 0;
  while (out.length < size) {
    const w = ENGLISH[Math.floor(r() * ENGLISH.length)] as string;
    out += sentence === 0 ? w[0]?.toUpperCase() + w.slice(1) : w;
    sentence++;
    if (sentence > 6 + r() * 12) {
      out += r() < 0.2 ? ".\n" : ". ";
      sentence = 0;
    } else out += r() < 0.05 ? ", " : " ";
  }
  return flat(out.slice(0, size));
}

function repeatTo(unit: string, size: number): string {
  return flat(unit.repeat(Math.ceil(size / unit.length)).slice(0, size));
}

/**
 * The adversarial inputs of issue 17, each `size` characters: entity floods, gzip bombs, gzip
 * magic runs, PEM and JWT header floods, nested escapes, near-miss token prefixes and more.
 */
/** `text` cut into lines of `width` characters. */
function wrapLines(text: string, width: number): string {
  const lines: string[] = [];
  for (let k = 0; k < text.length; k += width) lines.push(text.slice(k, k + width));
  return lines.join("\n");
}

/** Random base64 runs of `width` (seeded), each followed by `sep` (and a `tail`-character line). */
function randomRuns(size: number, width: number, sep: string, seed: number, tail = 0): string {
  const r = rng(seed);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const pick = (n: number) => {
    let out = "";
    for (let k = 0; k < n; k++) out += alphabet[Math.floor(r() * 64)];
    return out;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const unit = tail > 0 ? `${pick(width)}${sep}${pick(tail)}\n\n` : `${pick(width)}${sep}`;
    parts.push(unit);
    length += unit.length;
  }
  return parts.join("").slice(0, size);
}

/** `size` pseudo-random bytes (seeded). */
function randomBytes(size: number, seed: number): Buffer {
  const r = rng(seed);
  const out = Buffer.alloc(size);
  for (let k = 0; k < size; k++) out[k] = Math.floor(r() * 256);
  return out;
}

/**
 * Rows of adversarialInputs beyond the kinds issue 17 names (entity floods, gzip bombs, gzip-magic
 * runs, PEM/JWT header floods, nested escapes, near-miss token prefixes, and its decoders'
 * escapes and runs): floods aimed at decoders added since (hex dumps, wrapped blocks), floods of
 * random base64 runs, and legitimate heavy bodies whose decoded text is scanned too. The bench
 * reports them apart, against the same 3× mark.
 */
export const FURTHER_ROWS = new Set([
  "zeros (offset-like) flood",
  "hex dump lines flood",
  "random base64 runs of 20, space-separated",
  "random base64 lines of 48, each with a 4-character line after it",
  "base64 of English wrapped at 76",
  "base64 of random bytes wrapped at 64 (PEM body)",
]);

export function adversarialInputs(
  size: number,
  gzip: (data: Uint8Array) => Buffer,
  deflateRaw: (data: Uint8Array) => Buffer,
): Record<string, string> {
  const bomb = gzip(Buffer.alloc(64 * 1024 * 1024)).toString("base64");
  const zbomb = deflateRaw(Buffer.alloc(64 * 1024 * 1024)).toString("base64");
  return {
    "entity flood &#": repeatTo("&#", size),
    "entity flood &#1": repeatTo("&#1", size),
    "entity flood &#x41;": repeatTo("&#x41;", size),
    "gzip bomb (base64, 64 MiB of zeros each)": repeatTo(`${bomb} `, size),
    "deflate bomb (base64, raw deflate)": repeatTo(`${zbomb} `, size),
    "gzip magic runs H4sIAAAAAAAAAAAA": repeatTo("H4sIAAAAAAAAAAAA ", size),
    "gzip magic run, one long": `H4sI${repeatTo("A", size - 4)}`,
    "zlib magic runs": repeatTo("eJwAAAAAAAAAAAAAAAAA ", size),
    "zip magic runs": repeatTo("UEsDBAAAAAAAAAAAAAAAAAAA ", size),
    "PEM header flood": repeatTo("-----BEGIN RSA PRIVATE KEY-----\n", size),
    "PEM header + body flood": repeatTo(
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
      size,
    ),
    "JWT header flood": repeatTo("eyJhbGciOiJIUzI1NiJ9.", size),
    "JWT prefix flood eyJ": repeatTo("eyJ", size),
    "nested escapes %25": repeatTo("%25", size),
    "nested escapes \\\\u005c": repeatTo("\\u005c", size),
    "octal flood": repeatTo("\\101", size),
    "zero-width joiners": repeatTo("ab\u200b", size),
    "JSON \\n between token characters": repeatTo("abc\\n", size),
    "separated escapes": repeatTo("\\ u 0 0 4 1 ", size),
    "near-miss token prefixes": nearMiss(size),
    "long base64 run": repeatTo("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", size),
    "long hex run": repeatTo("4142434445464748", size),
    "zeros (offset-like) flood": repeatTo("0", size),
    "hex dump lines flood": repeatTo(
      "00000000: 4142 4344 4546 4748 494a 4b4c 4d4e 4f50  ABCDEFGHIJKLMNOP\n",
      size,
    ),
    "random base64 runs of 20, space-separated": randomRuns(size, 20, " ", 17),
    "random base64 lines of 48, each with a 4-character line after it": randomRuns(
      size,
      48,
      "\n",
      19,
      4,
    ),
    "base64 of English wrapped at 76": wrapLines(
      Buffer.from(englishText(Math.floor((size * 3) / 4) - 1024)).toString("base64"),
      76,
    ).slice(0, size),
    "base64 of random bytes wrapped at 64 (PEM body)": wrapLines(
      randomBytes(Math.floor((size * 3) / 4) - 1024, 13).toString("base64"),
      64,
    ).slice(0, size),
  };
}
