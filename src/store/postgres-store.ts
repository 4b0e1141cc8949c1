import type { Clock } from '../core/clock.ts';
import { PostgresHistory } from './postgres-history.ts';
import type { PgPool } from './postgres-pool.ts';
import { PostgresRegistry } from './postgres-registry.ts';
import type {
  AppendRequest,
  AppendResult,
  Changes,
  ClientRecord,
  HistoryLimits,
  KeyRecord,
  Store,
  StoredMessage,
  TokenRecord,
  TopicState,
} from './store.ts';

/**
 * The cluster store: the Registry (`postgres-registry.ts`) and History (`postgres-history.ts`) roles
 * on one PostgreSQL schema, shared by every node. `open()` connects and migrates the schema;
 * `close()` lets appends settle, writes pending token last-use times and lets go of the pool (which
 * ends once the presence role has closed too; see `PostgresBackend`).
 */
export class PostgresStore implements Store {
  readonly #db: PgPool;
  readonly #registry: PostgresRegistry;
  readonly #history: PostgresHistory;
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  #opening: Promise<void> | undefined;
  #retained = false;
  #closing: Promise<void> | undefined;

  constructor(db: PgPool, history: HistoryLimits, clock?: Clock) {
    this.#db = db;
    this.#registry = new PostgresRegistry(db);
    this.#history = new PostgresHistory(db, history, clock);
  }

  open(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new Error('the PostgreSQL store is closed'));
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    this.#state = 'opening';
    try {
      if (!this.#retained) await this.#db.retain();
      this.#retained = true;
      await this.#registry.open();
      await this.#history.open();
    } catch (err) {
      // Not open: a later open() tries again (the database may be back by then).
      this.#state = 'new';
      this.#opening = undefined;
      throw err;
    }
    this.#state = 'open';
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === 'opening') await this.#opening?.catch(() => undefined);
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    if (wasOpen) {
      await this.#history.close();
      await this.#registry.close();
    }
    if (this.#retained) await this.#db.release();
  }

  get #r(): PostgresRegistry {
    if (this.#state !== 'open') throw new Error('store is not open');
    return this.#registry;
  }

  get #h(): PostgresHistory {
    if (this.#state !== 'open') throw new Error('store is not open');
    return this.#history;
  }

  async trim(now: number): Promise<void> {
    await Promise.all([this.#h.trim(now), this.#r.trim(now)]);
  }

  // Registry
  async createClient(client: ClientRecord): Promise<void> {
    return this.#r.createClient(client);
  }
  async getClient(id: string): Promise<ClientRecord | undefined> {
    return this.#r.getClient(id);
  }
  async listClients(): Promise<ClientRecord[]> {
    return this.#r.listClients();
  }
  async revokeClient(id: string, at: number): Promise<boolean> {
    return this.#r.revokeClient(id, at);
  }
  async createKey(key: KeyRecord): Promise<void> {
    return this.#r.createKey(key);
  }
  async findKey(hash: string): Promise<KeyRecord | undefined> {
    return this.#r.findKey(hash);
  }
  async listKeys(): Promise<KeyRecord[]> {
    return this.#r.listKeys();
  }
  async revokeKey(nameOrId: string, at: number): Promise<boolean> {
    return this.#r.revokeKey(nameOrId, at);
  }
  async createToken(token: TokenRecord): Promise<void> {
    return this.#r.createToken(token);
  }
  async createTokenCapped(token: TokenRecord, max: number): Promise<{ created: boolean; revoked: string[] }> {
    return this.#r.createTokenCapped(token, max);
  }
  async getToken(hash: string): Promise<TokenRecord | undefined> {
    return this.#r.getToken(hash);
  }
  async touchToken(hash: string, at: number): Promise<void> {
    return this.#r.touchToken(hash, at);
  }
  async deleteToken(hash: string): Promise<void> {
    return this.#r.deleteToken(hash);
  }
  async deleteIdleTokens(before: number): Promise<number> {
    return this.#r.deleteIdleTokens(before);
  }
  async createTicket(hash: string, tokenHash: string, expiresAt: number): Promise<void> {
    return this.#r.createTicket(hash, tokenHash, expiresAt);
  }
  async consumeTicket(hash: string, now: number): Promise<string | undefined> {
    return this.#r.consumeTicket(hash, now);
  }
  async pollChanges(): Promise<Changes> {
    return this.#r.pollChanges();
  }

  // History
  async append(req: AppendRequest): Promise<AppendResult> {
    return this.#h.append(req);
  }
  async readHistory(topic: string, after: number, limit: number, maxBytes?: number): Promise<StoredMessage[]> {
    return this.#h.readHistory(topic, after, limit, maxBytes);
  }
  async latest(topics: readonly string[]): Promise<Map<string, { offset: number; epoch: string }>> {
    return this.#h.latest(topics);
  }

  async listTopics(after: string, limit: number): Promise<{ topic: string; offset: number; epoch: string }[]> {
    return this.#h.listTopics(after, limit);
  }

  async topicState(topic: string): Promise<TopicState> {
    return this.#h.topicState(topic);
  }
}
