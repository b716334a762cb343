/** Client addresses as every adapter reports them (AUTH-SPEC §1.4). */
import { BlockList, isIP } from 'node:net';

/** `::ffff:127.0.0.1` → `127.0.0.1`, so rules, backends and logs see the IPv4 address the client used. */
export function normalizeIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Parses `10.0.0.0/8`, `127.0.0.1`, `::1` into a BlockList; throws on a malformed entry. */
export function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', bits] = entry.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(addr) === 0) throw new Error(`not an IP address: ${entry}`);
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

/**
 * The client address of an HTTP request: the TCP peer, or the first X-Forwarded-For
 * entry (else X-Real-IP) when the peer is a trusted proxy. Trusting the header from
 * anyone would let any client choose the IP that rules and limits see.
 */
export function httpClientIp(
  peer: string,
  headers: Record<string, string | string[] | undefined>,
  trusted: BlockList | undefined,
): string {
  const ip = normalizeIp(peer);
  if (!trusted || !trusted.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')) return ip;
  const xff = headers['x-forwarded-for'];
  const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
  const real = headers['x-real-ip'];
  const candidate = first || (Array.isArray(real) ? real[0] : real)?.trim();
  return candidate && isIP(candidate) ? normalizeIp(candidate) : ip;
}
