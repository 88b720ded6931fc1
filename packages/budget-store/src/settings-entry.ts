/**
 * `@bottlekit/budget-store/settings`: `$BOTTLEKIT_HOME/settings.yml` (its schema, parser, loader
 * and how it becomes budgets). A subpath of its own so that opening a store and reading the ledger
 * (every operator command) does not load the YAML parser and zod.
 */
export {
  applySettings,
  budgetsFromSettings,
  type LoadedSettings,
  loadSettings,
  parseSettings,
  type Settings,
  type SettingsLimit,
  type SettingsValidation,
  settingsJsonSchema,
  settingsSchema,
} from "./settings.ts";
