/**
 * SSRF protection: webhook URLs may not reach loopback, private, link-local (cloud metadata at
 * 169.254.169.254), shared, multicast, reserved or documentation addresses, in any spelling — the URL
 * parser turns decimal, octal and hex IPv4 forms into dotted quads, and IPv6 forms that embed an IPv4
 * address (mapped, compatible, NAT64, 6to4) are judged by that address — unless the configured allow-list
 * (`webhookAllowPrivate`, addresses or CIDRs) covers the address.
 *
 * Checked twice: when a URL is registered, and on every connection, through `lookup`, which resolves
 * the name, refuses if any address it resolves to is blocked, and hands the socket exactly the checked
 * addresses (no second resolution an attacker's DNS could answer differently). Redirects are never followed.
 */
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { SyncError } from '../core/errors.ts';

type Range = [prefix: number[], bits: number, reason: string];

const V4_RANGES: Range[] = [
  [[0], 8, 'a "this network" address'],
  [[10], 8, 'a private address'],
  [[100, 64], 10, 'a shared (carrier-grade NAT) address'],
  [[127], 8, 'a loopback address'],
  [[169, 254], 16, 'a link-local (cloud metadata) address'],
  [[172, 16], 12, 'a private address'],
  [[192, 0, 0], 24, 'a protocol-assignment address'],
  [[192, 0, 2], 24, 'a documentation address'],
  [[192, 168], 16, 'a private address'],
  [[198, 18], 15, 'a benchmarking address'],
  [[198, 51, 100], 24, 'a documentation address'],
  [[203, 0, 113], 24, 'a documentation address'],
  [[224], 4, 'a multicast address'],
  [[240], 4, 'a reserved address'],
];

const V6_RANGES: Range[] = [
  [[0xfc], 7, 'a unique local (private) IPv6 address'],
  [[0xfe, 0x80], 10, 'a link-local IPv6 address'],
  [[0xfe, 0xc0], 10, 'a site-local IPv6 address'],
  [[0xff], 8, 'a multicast IPv6 address'],
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'a documentation IPv6 address'],
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, 'a discard IPv6 address'],
  [[0x20, 0x01, 0, 0], 32, 'a Teredo IPv6 address'],
];

function inRange(bytes: number[], [prefix, bits]: Range): boolean {
  for (let i = 0; i * 8 < bits; i++) {
    const take = Math.min(8, bits - i * 8);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** 16 bytes of an IPv6 address (with an optional trailing dotted quad); null if it is not one. */
export function v6Bytes(input: string): number[] | null {
  let ip = input.toLowerCase();
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  let tail: number[] = [];
  const lastColon = ip.lastIndexOf(':');
  if (ip.slice(lastColon + 1).includes('.')) {
    const quad = ip.slice(lastColon + 1);
    if (isIP(quad) !== 4) return null;
    tail = v4Bytes(quad);
    ip = `${ip.slice(0, lastColon + 1)}0:0`;
  }
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const groups = [...head, ...new Array(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    const n = Number.parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(b: number[]): string | null {
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12).join('.');
  if (zero(0, 12) && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && (b[15] ?? 0) <= 1)) {
    return b.slice(12).join('.');
  }
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12))
    return b.slice(12).join('.');
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6).join('.');
  return null;
}

function blockedV4(ip: string): string | null {
  const bytes = v4Bytes(ip);
  for (const range of V4_RANGES) if (inRange(bytes, range)) return range[2];
  return null;
}

export class AddressPolicy {
  private readonly allowed = new BlockList();
  private readonly allowAny: boolean;

  /** `allowPrivate`: addresses or CIDRs webhooks may reach despite the rules. Throws on a bad entry. */
  constructor(allowPrivate: readonly string[]) {
    for (const entry of allowPrivate) {
      const [addr, bits, extra] = entry.split('/');
      const family = isIP(addr ?? '');
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (
        !family ||
        extra !== undefined ||
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > (family === 6 ? 128 : 32) ||
        (bits !== undefined && !/^\d+$/.test(bits))
      ) {
        throw new Error(`webhookAllowPrivate: "${entry}" is not an IP address or CIDR`);
      }
      this.allowed.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.allowAny = allowPrivate.length > 0;
  }

  private isAllowed(ip: string, family: 4 | 6): boolean {
    return this.allowAny && this.allowed.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** Why webhooks may not reach this address, or null when they may. */
  blockedReason(address: string): string | null {
    const family = isIP(address);
    if (family === 4) return this.isAllowed(address, 4) ? null : blockedV4(address);
    if (family !== 6) return 'not an IP address';
    if (this.isAllowed(address, 6)) return null;
    const bytes = v6Bytes(address);
    if (!bytes) return 'not an IP address';
    if (bytes.every((x) => x === 0)) return 'the unspecified IPv6 address';
    if (bytes.slice(0, 15).every((x) => x === 0) && bytes[15] === 1) return 'a loopback address';
    const v4 = embeddedV4(bytes);
    if (v4) return this.isAllowed(v4, 4) ? null : blockedV4(v4);
    for (const range of V6_RANGES) if (inRange(bytes, range)) return range[2];
    return null;
  }

  private resolve(hostname: string): Promise<{ address: string; family: number }[]> {
    return new Promise((resolve, reject) =>
      dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
        err ? reject(err) : resolve(addresses),
      ),
    );
  }

  /**
   * Every address the URL's host stands for, each one allowed; throws BAD_REQUEST naming the first
   * refused address otherwise. Only http and https URLs pass.
   */
  async checkUrl(raw: string): Promise<URL> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new SyncError('BAD_REQUEST', 'url is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new SyncError('BAD_REQUEST', 'url must be http:// or https://');
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === '') throw new SyncError('BAD_REQUEST', 'url has no host');
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = (await this.resolve(host)).map((a) => a.address);
      } catch {
        throw new SyncError('BAD_REQUEST', `url host ${host} does not resolve`);
      }
    }
    for (const address of addresses) {
      const reason = this.blockedReason(address);
      if (reason) {
        throw new SyncError(
          'BAD_REQUEST',
          `url ${url.origin} resolves to ${address}, ${reason}; webhooks may not target it (see SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE)`,
        );
      }
    }
    return url;
  }

  /** A `net.connect` lookup that resolves, checks every address, and connects only to checked ones. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const host = hostname.replace(/^\[(.*)\]$/, '$1');
    const done = (addresses: { address: string; family: number }[]) => {
      for (const a of addresses) {
        const reason = this.blockedReason(a.address);
        if (reason) {
          const err = Object.assign(new Error(`${host} resolves to ${a.address}, ${reason}`), {
            code: 'EBLOCKED',
          });
          callback(err as NodeJS.ErrnoException, '', 0);
          return;
        }
      }
      const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
      const usable = wanted ? addresses.filter((a) => a.family === wanted) : addresses;
      if (usable.length === 0) {
        const err = Object.assign(new Error(`${host} has no usable address`), { code: 'ENOTFOUND' });
        callback(err as NodeJS.ErrnoException, '', 0);
        return;
      }
      if (options.all) (callback as unknown as (e: null, a: typeof usable) => void)(null, usable);
      else callback(null, usable[0]!.address, usable[0]!.family);
    };
    const family = isIP(host);
    if (family) {
      done([{ address: host, family }]);
      return;
    }
    this.resolve(host).then(done, (err: NodeJS.ErrnoException) => callback(err, '', 0));
  };
}
