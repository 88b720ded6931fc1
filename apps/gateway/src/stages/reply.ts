// Answers the pipeline writes itself: a gateway error in the client API's shape, and what an
// upstream failure looks like to the client.
import type { ServerResponse } from "node:http";
import { type ClientApi, errorJson, type GatewayErrorType } from "../apis.ts";
import type { DlpFinding } from "../dlp-types.ts";
import type { MeteredUsage } from "./types.ts";

export const JSON_HEADERS = { "content-type": "application/json" } as const;
export const NO_FINDINGS: DlpFinding[] = [];

/**
 * Writes a gateway error in the client API's shape (nothing when headers are already out). A
 * client mistake or a policy refusal does not change on retry: those tell the SDKs not to retry.
 */
export function sendError(
  res: ServerResponse,
  api: ClientApi | undefined,
  status: number,
  type: GatewayErrorType,
  message: string,
  extra?: Record<string, unknown>,
  headers?: Record<string, string>,
): void {
  if (res.headersSent) return;
  const body = errorJson(api, type, message, extra);
  if (status < 500 && status !== 408 && status !== 409 && status !== 429)
    res.setHeader("x-should-retry", "false");
  if (headers !== undefined) for (const k in headers) res.setHeader(k, headers[k] as string);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** What an upstream failure looks like to the client. */
export function classifyUpstreamError(error: unknown): {
  status: number;
  type: GatewayErrorType;
  kind: string;
  message: string;
} {
  const code = (error as { code?: string }).code ?? "";
  const name = (error as { name?: string }).name ?? "";
  if (
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    name === "TimeoutError"
  ) {
    return {
      status: 504,
      type: "upstream_timeout",
      kind: "timeout",
      message: "the upstream did not answer in time",
    };
  }
  if (
    code === "UND_ERR_SOCKET" ||
    code === "ECONNRESET" ||
    code === "UND_ERR_CLOSED" ||
    name === "SocketError"
  ) {
    return {
      status: 502,
      type: "upstream_connection_error",
      kind: "reset",
      message: "the upstream closed the connection before the response was complete",
    };
  }
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return {
      status: 502,
      type: "upstream_connection_error",
      kind: "connect",
      message: `could not connect to the upstream (${code})`,
    };
  }
  return {
    status: 502,
    type: "upstream_error",
    kind: "other",
    message: `the upstream request failed${code ? ` (${code})` : ""}`,
  };
}

/** The usage of a call whose usage report never arrived: charged its whole reservation. */
export function missingUsage(): MeteredUsage {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    usageMissing: true,
  };
}
