import type { ClaimResult, ConnectionRecord, NodeRecord, Presence, PresenceNode, Subscriber } from './presence.ts';

/**
 * The embedded Presence: one node, everything in this process's memory. A connect or a subscribe
 * costs a Map operation, never a write. Also gives the SQLite store its live-token view
 * (`liveTokensOf`), synchronously, for token caps and idle expiry.
 */
export class MemoryPresence implements Presence {
  readonly #conns = new Map<string, ConnectionRecord>();
  readonly #byToken = new Map<string, ConnectionRecord>();
  readonly #subs = new Map<string, Map<string, number>>();
  #node: NodeRecord | undefined;

  async start(node: PresenceNode): Promise<void> {
    const now = Date.now();
    this.#node = { nodeId: node.nodeId, instanceId: node.instanceId, address: node.address, startedAt: now, expiresAt: Infinity };
  }

  async close(): Promise<void> {
    this.#conns.clear();
    this.#byToken.clear();
    this.#subs.clear();
    this.#node = undefined;
  }

  async claim(conn: ConnectionRecord, opts: { replace: boolean; maxPerClient: number }): Promise<ClaimResult> {
    const holder = this.#byToken.get(conn.tokenHash);
    if (holder && !opts.replace) return { ok: false, reason: 'duplicate', holder: { ...holder } };
    if (opts.maxPerClient > 0) {
      let n = 0;
      for (const c of this.#conns.values()) if (c.clientId === conn.clientId && c !== holder) n++;
      if (n >= opts.maxPerClient) return { ok: false, reason: 'client_limit' };
    }
    if (holder) this.#forget(holder.id);
    const rec = { ...conn };
    this.#conns.set(rec.id, rec);
    this.#byToken.set(rec.tokenHash, rec);
    return holder ? { ok: true, replaced: { ...holder } } : { ok: true };
  }

  #forget(id: string): void {
    const c = this.#conns.get(id);
    if (!c) return;
    this.#conns.delete(id);
    if (this.#byToken.get(c.tokenHash) === c) this.#byToken.delete(c.tokenHash);
    for (const [topic, m] of this.#subs) if (m.delete(id) && m.size === 0) this.#subs.delete(topic);
  }

  async release(connectionId: string): Promise<void> {
    this.#forget(connectionId);
  }

  async connectionsOfToken(tokenHash: string): Promise<ConnectionRecord[]> {
    const c = this.#byToken.get(tokenHash);
    return c ? [{ ...c }] : [];
  }

  async listConnections(): Promise<ConnectionRecord[]> {
    return [...this.#conns.values()].map((c) => ({ ...c })).sort((a, b) => a.connectedAt - b.connectedAt);
  }

  async liveTokens(hashes: readonly string[]): Promise<Set<string>> {
    return new Set(hashes.filter((h) => this.#byToken.has(h)));
  }

  /** Synchronous live-token view for the SQLite store: the live tokens of `clientId`, or all. */
  liveTokensOf(clientId?: string): Set<string> {
    const out = new Set<string>();
    for (const c of this.#conns.values()) if (clientId === undefined || c.clientId === clientId) out.add(c.tokenHash);
    return out;
  }

  join(connectionId: string, topic: string, at: number): void {
    if (!this.#conns.has(connectionId)) return;
    let m = this.#subs.get(topic);
    if (!m) this.#subs.set(topic, (m = new Map()));
    m.set(connectionId, at);
  }

  leave(connectionId: string, topic: string): void {
    const m = this.#subs.get(topic);
    if (m?.delete(connectionId) && m.size === 0) this.#subs.delete(topic);
  }

  async flush(): Promise<void> {}

  async subscribers(topic: string): Promise<Subscriber[]> {
    const m = this.#subs.get(topic);
    if (!m) return [];
    const out: Subscriber[] = [];
    for (const [id, since] of m) {
      const c = this.#conns.get(id);
      if (c) out.push({ connectionId: id, clientId: c.clientId, nodeId: c.nodeId, topic, since });
    }
    return out;
  }

  async nodes(): Promise<NodeRecord[]> {
    return this.#node ? [{ ...this.#node }] : [];
  }
}
