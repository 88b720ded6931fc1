export { type CliIo, EXIT, run } from "./cli.ts";
export {
  BottleError,
  type BottleErrorCode,
  type BottleErrorOptions,
  isBottleError,
} from "./errors.ts";
