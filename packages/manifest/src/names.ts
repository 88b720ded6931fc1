import { suggest } from "@bottlekit/diagnostics";

/** Agent and bottle names: the file name without `.md`. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;

/** Environment variable names, as the loader accepts them in `env` keys and `${...}` references. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** The closest candidate to `word`, when one is close enough to be a plausible typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  return suggest(word, candidates, 1)[0];
}
