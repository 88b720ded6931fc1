/**
 * Which heavy parts this process has loaded, for the CLI's code cache (see `cliFeatures`). Kept in
 * a module of its own so that reading it loads nothing else.
 */
export const loaded = {
  /** The YAML format's parser and validator (yaml, zod). */
  nativeFormat: false,
};
