export {
  isTestUtilsError,
  TestUtilsError,
  type TestUtilsErrorCode,
  type TestUtilsErrorOptions,
} from "./errors.ts";
