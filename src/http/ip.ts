import { isIP, type BlockList } from 'node:net';

/**
 * The client address for an allow-list decision: the socket peer, or — only when the peer is a
 * trusted proxy — the right-most X-Forwarded-For address that is not itself a trusted proxy.
 */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: BlockList | undefined,
): string {
  const addr = peer ?? '';
  if (!trusted || !forwardedFor || !inList(trusted, addr)) return addr;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return addr;
    if (!inList(trusted, hop)) return hop;
  }
  return hops[0] ?? addr;
}

export function inList(list: BlockList, addr: string): boolean {
  const family = isIP(addr);
  if (family === 0) return false;
  return list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
}
