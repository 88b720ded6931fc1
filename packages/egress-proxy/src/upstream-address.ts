import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

/**
 * Where the proxy may connect for a host that only a wildcard route allows. A wildcard such as
 * `*.vercel.app` lets the agent pick a name whose DNS it controls, and point it at loopback, the
 * cloud metadata address or the controller's own network (DNS rebinding works the same way: the
 * answer changes between two lookups). So every address a lookup returns for such a host must be
 * public; one private answer refuses the connection (fail closed). A host a route names exactly
 * (`api.internal.example`, `10.0.0.5`) is the operator's explicit choice and connects wherever
 * it resolves.
 */

// two lists: a BlockList holding ::ffff:0:0/96 would also match every IPv4 address checked in it
const PRIVATE_V4 = new BlockList();
const PRIVATE_V6 = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], // "this" network
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const)
  PRIVATE_V4.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 96], // unspecified, loopback, IPv4-compatible
  ["::ffff:0:0", 96], // IPv4-mapped: whatever v4 address it carries, refused
  ["64:ff9b::", 96], // NAT64 (carries a v4 address)
  ["64:ff9b:1::", 48],
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4 (carries a v4 address)
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const)
  PRIVATE_V6.addSubnet(net, bits, "ipv6");

/** True when `address` (an IP literal, IPv6 with or without brackets) is a public unicast address. */
export function isPublicAddress(address: string): boolean {
  let a = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const zone = a.indexOf("%");
  if (zone !== -1) return false; // a zone id names a local interface
  a = a.toLowerCase();
  const family = isIP(a);
  if (family === 4) return !PRIVATE_V4.check(a, "ipv4");
  if (family === 6) return !PRIVATE_V6.check(a, "ipv6");
  return false; // not an address: fail closed
}

/** The error a refused upstream address raises (audited as `deny_route`, `private_upstream_address`). */
export const PRIVATE_UPSTREAM = "E_PRIVATE_UPSTREAM";

function privateError(host: string): NodeJS.ErrnoException {
  return Object.assign(
    new Error(
      `${host} resolves to a non-public address; only a route naming it exactly may reach it`,
    ),
    { code: PRIVATE_UPSTREAM },
  );
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for `net.connect` / `https.request` that refuses the connection when any address
 * the name resolves to is not public. It checks the very answer the socket connects to, so a
 * second, different DNS answer cannot slip in between the check and the connect.
 */
export function publicOnlyLookup(
  hostname: string,
  options: { family?: number | string; all?: boolean; hints?: number },
  callback: LookupCallback,
): void {
  const family = options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : options.family;
  dnsLookup(
    hostname,
    {
      all: true,
      ...(typeof family === "number" ? { family } : {}),
      ...(options.hints === undefined ? {} : { hints: options.hints }),
    },
    (error, addresses) => {
      if (error) {
        callback(error, []);
        return;
      }
      if (addresses.length === 0 || addresses.some((a) => !isPublicAddress(a.address))) {
        callback(privateError(hostname), []);
        return;
      }
      if (options.all) {
        callback(null, addresses);
        return;
      }
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    },
  );
}

/** An IP-literal target a wildcard route matched: refused at once when it is not public. */
export function literalRefusal(host: string): NodeJS.ErrnoException | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bare) === 0) return undefined;
  return isPublicAddress(bare) ? undefined : privateError(host);
}
