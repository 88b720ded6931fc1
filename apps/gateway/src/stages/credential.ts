// Stage 4, credential: a client never holds a provider credential, unless the provider is
// configured `passthrough_auth` (then the client's own key is forwarded and nothing injected).
import { sendError } from "./reply.ts";
import type { Call, Pipeline } from "./types.ts";

export function checkCredential(call: Call, p: Pipeline): boolean {
  const target = call.target;
  const foreign = call.foreignCredential;
  if (foreign !== undefined) {
    if (target.passthrough) call.clientCredential = foreign;
    else if (p.dlp.isProviderCredential(foreign)) {
      p.metrics.dlpFindings.inc(["outbound", "client_credential", "block"]);
      sendError(
        call.res,
        call.api,
        401,
        "authentication_error",
        `clients must not send provider credentials to the gateway: it injects ${target.provider}'s key itself. Use a gateway key (\`bottle-gateway keys create\`), or configure ${target.provider} with passthrough_auth`,
      );
      return false;
    }
  } else if (target.passthrough) {
    sendError(
      call.res,
      call.api,
      401,
      "authentication_error",
      `provider ${target.provider} is configured with passthrough_auth: send its credential as Authorization or x-api-key`,
    );
    return false;
  }
  return true;
}
