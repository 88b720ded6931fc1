import { once } from "@bottlekit/diagnostics";

/**
 * Node built-ins this package needs only once a connection uses them, required then instead of
 * at import. node:tls and node:https (which loads node:tls) cost about 10 ms and 300 fresh memory
 * pages when first required, and `bottle run` registers its session and answers the sandbox's
 * probe without either: only an intercepted connection (TLS with the bottle's CA) or a request
 * forwarded over HTTPS needs them.
 *
 * `process.getBuiltinModule` is synchronous and works the same in the ESM build and in a
 * CommonJS bundle (`bottle run`'s controller). A built-in cannot fail to load; if it ever threw,
 * the caller's connection fails as any error in its stage does: refused, nothing forwarded.
 */
export const tls = once(() => process.getBuiltinModule("node:tls"));
export const https = once(() => process.getBuiltinModule("node:https"));
