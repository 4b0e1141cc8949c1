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

/** Answers per list and address: lists come from the frozen config, so an answer never changes. */
const answers = new WeakMap<BlockList, Map<string, boolean>>();
const MAX_REMEMBERED = 4096;

/** Is `addr` in `list`? (BlockList.check parses the address on every call; the answer is remembered.) */
export function inList(list: BlockList, addr: string): boolean {
  let known = answers.get(list);
  const hit = known?.get(addr);
  if (hit !== undefined) return hit;
  const family = isIP(addr);
  const yes = family !== 0 && list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
  if (!known) answers.set(list, (known = new Map()));
  if (known.size >= MAX_REMEMBERED) known.clear();
  known.set(addr, yes);
  return yes;
}
