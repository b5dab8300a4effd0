// Which network addresses an outbound request (image fetch, webhook, model download) may reach: public
// unicast only, unless an operator allowlists a host or range (tests serve images from 127.0.0.1 that way).
import ipaddr from 'ipaddr.js';

export type Allowlist = readonly string[];

/** Strips IPv6 brackets; returns the address if `host` is an IP literal (URL parsing has already turned
 *  decimal / octal / hex IPv4 forms such as 2130706433 or 0177.0.0.1 into dotted quads). */
export function ipLiteral(host: string): string | undefined {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return ipaddr.isValid(h) ? h : undefined;
}

/** Normalises an address (IPv4-mapped IPv6 becomes IPv4) and classifies it. */
function parse(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const a = ipaddr.parse(ip);
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) return (a as ipaddr.IPv6).toIPv4Address();
  return a;
}

/** The reason an address is not public, or undefined when it is a global unicast address. */
export function blockedReason(ip: string): string | undefined {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = parse(ip);
  } catch {
    return 'not an IP address';
  }
  const range = a.range();
  if (a.kind() === 'ipv4') {
    // 'unicast' is ipaddr's name for everything outside the special ranges (private, loopback, link-local
    // incl. 169.254.169.254 metadata, CGNAT, multicast, broadcast, 0.0.0.0/8, reserved, benchmarking, ...).
    return range === 'unicast' ? undefined : range;
  }
  // IPv6: only global unicast (2000::/3) outside the ranges that embed or translate to IPv4 (NAT64, 6to4,
  // Teredo), which could reach private IPv4 hosts.
  if (range !== 'unicast') return range;
  if (!a.match(ipaddr.parseCIDR('2000::/3'))) return 'not global unicast';
  return undefined;
}

function inCidr(ip: string, entry: string): boolean {
  try {
    const a = parse(ip);
    if (entry.includes('/')) {
      const [net, bits] = ipaddr.parseCIDR(entry);
      return a.kind() === net.kind() && a.match([net, bits]);
    }
    if (!ipaddr.isValid(entry)) return false;
    const e = parse(entry);
    return e.kind() === a.kind() && e.toString() === a.toString();
  } catch {
    return false;
  }
}

/** Allowlist entries are host names (match the URL's host) or IPs / CIDR ranges (match the address). */
export function isAllowed(host: string, ip: string, allow: Allowlist): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return allow.some((e) => e.toLowerCase() === h || inCidr(ip, e));
}

export function checkAddress(host: string, ip: string, allow: Allowlist): string | undefined {
  const reason = blockedReason(ip);
  if (reason === undefined || isAllowed(host, ip, allow)) return undefined;
  return `${host} resolves to ${ip} (${reason}), which is not a public address`;
}
