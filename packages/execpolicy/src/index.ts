export {
  ExecPolicyError,
  type ExecPolicyErrorCode,
  type ExecPolicyErrorOptions,
  isExecPolicyError,
} from "./errors.ts";
