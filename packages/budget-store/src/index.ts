export {
  BudgetStoreError,
  type BudgetStoreErrorCode,
  type BudgetStoreErrorOptions,
  isBudgetStoreError,
} from "./errors.ts";
