export { type CliIo, EXIT, run } from "./cli.ts";
export {
  GatewayError,
  type GatewayErrorCode,
  type GatewayErrorOptions,
  isGatewayError,
} from "./errors.ts";
