import { isIP, isIPv6 } from 'node:net';

import type { Request } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';

/**
 * The client address the per-address rate limit counts under.
 *
 * Behind a proxy Express takes `req.ip` from `X-Forwarded-For` as sent, and App Service's front end
 * writes the client there as `ip:port` (Application Gateway too; Front Door writes the bare address
 * and App Service then adds Front Door's own `ip:port`). With the port in the key, every new
 * connection of a client was a new key, and the limit counted nothing. So the port and the brackets
 * of `[v6]:port` are dropped first; express-rate-limit's `ipKeyGenerator` then folds IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`) into IPv4 and an IPv6 address into its /56 network (one subscriber's range).
 * A bare IPv6 address is taken whole: `2001:db8::1:443` is itself an address, so an IPv6 address
 * with a port must come in brackets, as proxies write it.
 */
export function clientAddressKey(req: Pick<Request, 'ip'>): string {
  return ipKeyGenerator(withoutPort(req.ip ?? 'unknown'));
}

const MAX_PORT = 65_535;

function isPort(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) <= MAX_PORT;
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[2001:db8::1]:443` and `[2001:db8::1]` → `2001:db8::1`; anything else unchanged. */
export function withoutPort(address: string): string {
  const value = address.trim();
  if (isIP(value) !== 0) return value;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    const host = value.slice(1, close);
    const rest = value.slice(close + 1);
    const portOk = rest === '' || (rest.startsWith(':') && isPort(rest.slice(1)));
    return close > 0 && portOk && isIPv6(host) ? host : value;
  }
  const colon = value.lastIndexOf(':');
  if (colon > 0 && isPort(value.slice(colon + 1))) {
    // IPv4 with a port, or an IPv6 address that is no address with its last group (`::ffff:1.2.3.4:5678`).
    const host = value.slice(0, colon);
    if (isIP(host) !== 0) return host;
  }
  return value;
}
