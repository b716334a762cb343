/**
 * Static rules of an `auth_backend` chain (AUTH-SPEC §6.2, §6.4): address parsing and CIDR
 * matching (including the abbreviated `172.16/24` form and IPv4-mapped IPv6 clients), and the
 * fixed evaluation order token > ip > country > user agent, allow before deny. Pure: no I/O,
 * so the configurator's whole decision table is unit-tested directly.
 */
import type { AuthBackendConfig, RuleAction, RuleKind } from '../config/types.js';

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddr {
  v: 4 | 6;
  bytes: number[];
}

function parseV4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseV6(s: string): number[] | undefined {
  let tail: number[] = [];
  let text = s;
  // An embedded dotted quad (`::ffff:1.2.3.4`) supplies the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = v4;
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  if (head === undefined || rest === undefined) return undefined;
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const words = [...head, ...new Array<number>(fill).fill(0), ...rest];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * Parses an address; IPv4-mapped IPv6 (`::ffff:127.0.0.1`, what a dual-stack socket reports for
 * an IPv4 peer) becomes the IPv4 address so `allow ip 127.0.0.1/8` matches it.
 */
export function parseIp(raw: string): IpAddr | undefined {
  const s = raw
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
  if (s.includes(':')) {
    const b = parseV6(s);
    if (b === undefined) return undefined;
    const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return mapped ? { v: 4, bytes: b.slice(12) } : { v: 6, bytes: b };
  }
  const b = parseV4(s);
  return b === undefined ? undefined : { v: 4, bytes: b };
}

export interface Cidr {
  addr: IpAddr;
  prefix: number;
}

/**
 * Parses `a.b.c.d`, `a.b.c.d/n`, the abbreviated `172.16/24` (missing octets are 0, AUTH-SPEC
 * §6.4) and IPv6 with or without a prefix. A bare abbreviated address (`10.1`) covers its octets.
 */
export function parseCidr(raw: string): Cidr | undefined {
  const [addrText = '', prefixText, ...more] = raw.trim().split('/');
  if (more.length > 0) return undefined;
  let addr: IpAddr | undefined;
  let implied: number;
  if (!addrText.includes(':') && /^\d{1,3}(\.\d{1,3}){0,3}$/.test(addrText)) {
    const octets = addrText.split('.');
    implied = octets.length * 8;
    while (octets.length < 4) octets.push('0');
    addr = parseIp(octets.join('.'));
  } else {
    addr = parseIp(addrText);
    implied = addr?.v === 4 ? 32 : 128;
    // A mapped IPv6 prefix (`::ffff:10.0.0.0/104`) is rewritten into IPv4 terms.
    if (addr?.v === 4 && addrText.includes(':') && prefixText !== undefined) {
      const p = Number(prefixText) - 96;
      return p >= 0 && p <= 32 ? { addr, prefix: p } : undefined;
    }
  }
  if (addr === undefined) return undefined;
  let prefix = implied;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
  }
  if (prefix > (addr.v === 4 ? 32 : 128)) return undefined;
  return { addr, prefix };
}

export function cidrContains(c: Cidr, ip: IpAddr): boolean {
  if (c.addr.v !== ip.v) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((c.addr.bytes[i] ?? 0) & mask) !== ((ip.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** True when `ip` falls in the CIDR or equals the address written as `pattern`. */
export function ipMatches(pattern: string, ip: string): boolean {
  const c = parseCidr(pattern);
  const a = parseIp(ip);
  return c !== undefined && a !== undefined && cidrContains(c, a);
}

/** What the rules look at. */
export interface RuleInput {
  token: string | undefined;
  ip: string;
  userAgent: string | undefined;
  /** ISO 3166-1 alpha-2 from a GeoIP lookup; undefined without a database, so country rules never match. */
  country: string | undefined;
}

const ORDER: [RuleKind, RuleAction][] = [
  ['token', 'allow'],
  ['token', 'deny'],
  ['ip', 'allow'],
  ['ip', 'deny'],
  ['country', 'allow'],
  ['country', 'deny'],
  ['ua', 'allow'],
  ['ua', 'deny'],
];

function valueMatches(kind: RuleKind, value: string, input: RuleInput): boolean {
  switch (kind) {
    case 'token':
      return input.token !== undefined && input.token === value;
    case 'ip':
      return ipMatches(value, input.ip);
    case 'country':
      return input.country !== undefined && input.country.toUpperCase() === value.toUpperCase();
    case 'ua':
      // Case-sensitive substring: `MAG` and `TVIP` match set-top box user agents (AUTH-SPEC §6.4).
      return input.userAgent !== undefined && value !== '' && input.userAgent.includes(value);
  }
}

export interface RuleMatch {
  action: RuleAction;
  kind: RuleKind;
  value: string;
}

/**
 * AUTH-SPEC §6.2 steps 1–8: the first matching rule in the fixed order decides, whatever order
 * the config lists them in (a whitelisted IP with a blacklisted token is denied).
 */
export function evaluateRules(rules: AuthBackendConfig['rules'], input: RuleInput): RuleMatch | undefined {
  for (const [kind, action] of ORDER) {
    for (const r of rules) {
      if (r.kind !== kind || r.action !== action) continue;
      for (const value of r.values) {
        if (valueMatches(kind, value, input)) return { action, kind, value };
      }
    }
  }
  return undefined;
}

/**
 * AUTH-SPEC §7.1 domain lock: the Referer's host must equal a listed domain or be a subdomain
 * of one. A missing Referer passes unless `strict` (`domains_strict=true`), since the lock cannot
 * protect clients that send none anyway; a Referer that is present but not a URL fails.
 */
export function domainAllowed(
  referer: string | undefined,
  domains: readonly string[],
  strict: boolean,
): boolean {
  if (domains.length === 0) return true;
  if (referer === undefined || referer.trim() === '') return !strict;
  let host: string;
  try {
    host = new URL(referer.trim()).hostname.toLowerCase();
  } catch {
    return false;
  }
  host = host.replace(/\.$/, '');
  return domains.some((d) => {
    const dom = d.trim().toLowerCase().replace(/^\*\./, '').replace(/\.$/, '');
    return dom !== '' && (host === dom || host.endsWith('.' + dom));
  });
}
