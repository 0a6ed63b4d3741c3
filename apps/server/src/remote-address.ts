/**
 * Which addresses remote media may be fetched from. A server that fetches any URL it is given can be pointed at
 * its own loopback services, the cloud metadata endpoint (169.254.169.254) or the private network behind it
 * (SSRF). Every address a host resolves to is checked, and the connection is made to a checked address, so a DNS
 * answer that changes between the check and the connect (rebinding) cannot slip through.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Loopback, link-local, private, shared (CGNAT), multicast and reserved ranges (RFC 6890 special-purpose). */
const REFUSED: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

/** An address (or every address a host resolves to) is in a refused range and not allow-listed. */
export class RefusedAddressError extends Error {
  constructor(readonly host: string) {
    super(`${host} resolves to a loopback, link-local or private address`);
    this.name = 'RefusedAddressError';
  }
}

/** An address, `addr/prefix` subnet of the allow-list → the family and prefix BlockList takes. */
function parseEntry(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText] = entry.split('/');
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** True when `entry` is an IP address or CIDR block the allow-list accepts (for validating the server config). */
export const isAddressOrSubnet = (entry: string) => parseEntry(entry) !== undefined;

export class RemoteAddressPolicy {
  private readonly refused = new BlockList();
  private readonly allowed = new BlockList();

  /** `allow`: addresses or CIDR blocks (`10.1.2.3`, `10.0.0.0/8`, `::1`) fetched even though they are private. */
  constructor(allow: readonly string[] = []) {
    for (const [address, prefix, family] of REFUSED) this.refused.addSubnet(address, prefix, family);
    for (const entry of allow) {
      const parsed = parseEntry(entry);
      if (!parsed) throw new TypeError(`not an IP address or CIDR block: "${entry}"`);
      this.allowed.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }

  /** May a connection go to `address`? (IPv4-mapped IPv6 addresses are checked as the IPv4 they carry.) */
  permits(address: string): boolean {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return this.allowed.check(address, family) || !this.refused.check(address, family);
  }

  /**
   * The address to connect to for `host` (an IP literal, bracketed or not, or a name): the literal itself when
   * permitted, else the first of a name's addresses when every one is. Rejects with {@link RefusedAddressError},
   * or with the lookup's own error for a name that does not resolve.
   */
  resolve(host: string): Promise<string> {
    const bare = host.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare)) return this.permits(bare) ? Promise.resolve(bare) : Promise.reject(new RefusedAddressError(bare));
    return new Promise((done, fail) => this.lookup(bare, {}, (error, address) => (error ? fail(error) : done(address as string))));
  }

  /**
   * A `lookup` for http(s).request: resolves every address of the host and fails unless all are permitted.
   * IP literals never reach a lookup function, so callers check those with {@link permits} first.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      if (addresses.length === 0 || !addresses.every((a) => this.permits(a.address))) return callback(new RefusedAddressError(hostname), '', 0);
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      if (options.all) return (callback as unknown as (e: null, all: LookupAddress[]) => void)(null, wanted);
      if (wanted.length === 0) return callback(Object.assign(new Error(`${hostname} has no IPv${String(options.family)} address`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, wanted[0].address, wanted[0].family);
    });
  };
}
