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
 * An address as rules, backends and logs should see it, or undefined when `text` is not a bare
 * IP literal. IPv6 comes out in canonical form (lower case, zeros compressed, AUTH-SPEC §1.4),
 * so `2001:DB8::0:1` and `2001:db8::1` are one client; a zone id (`fe80::1%eth0`) means
 * nothing beyond the host that wrote it and is refused like any other malformed entry.
 */
export function canonicalIp(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6 || text.includes('%')) return undefined;
  const mapped = normalizeIp(text.toLowerCase());
  if (isIP(mapped) === 4) return mapped;
  return new URL(`http://[${mapped}]/`).hostname.slice(1, -1);
}

function isTrusted(list: BlockList, ip: string): boolean {
  return list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client address of an HTTP request (AUTH-SPEC §1.4, revised): the TCP peer, unless the
 * peer is a trusted proxy. Then X-Forwarded-For is read from the right, because each proxy
 * appends the address it received the request from: entries that are themselves trusted
 * proxies are skipped and the first untrusted one is the client. The leftmost entries are
 * whatever the client wrote, so they are never believed just for being first. X-Real-IP
 * counts only when there is no X-Forwarded-For. A malformed entry on the way means a proxy
 * (or a client) wrote something we cannot read, so the peer is answered rather than a guess.
 */
export function httpClientIp(
  peer: string,
  headers: Record<string, string | string[] | undefined>,
  trusted: BlockList | undefined,
): string {
  const ip = normalizeIp(peer);
  if (!trusted || !isTrusted(trusted, ip)) return ip;
  const xff = headers['x-forwarded-for'];
  if (xff !== undefined) {
    const entries = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
    let furthest: string | undefined;
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = canonicalIp((entries[i] ?? '').trim());
      if (entry === undefined) return ip;
      if (!isTrusted(trusted, entry)) return entry;
      furthest = entry;
    }
    // Every hop is a trusted proxy: the furthest one is the best we know of the client.
    return furthest ?? ip;
  }
  const real = headers['x-real-ip'];
  const candidate = canonicalIp((Array.isArray(real) ? (real[0] ?? '') : (real ?? '')).trim());
  return candidate ?? ip;
}
