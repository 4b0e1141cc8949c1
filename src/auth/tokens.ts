import type { Clock } from '../core/clock.ts';
import { isSecretFormat, randomSecret, sha256 } from '../core/ids.ts';
import type { ClientRecord, Store, TokenRecord } from '../store/store.ts';

const MAX_CLIENTS_KEPT = 10_000;

export type TokenCheck =
  | { ok: true; token: TokenRecord; client: ClientRecord }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked' | 'client_mismatch' };

/**
 * Consumer tokens and tickets. Tokens and tickets are 256-bit random values handed out once and
 * stored only as SHA-256 hashes; validation is a format check, then one hash lookup (never a slow
 * hash), so a flood of bogus tokens costs little.
 */
export class TokenService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #idleTtlMs: number;
  readonly #ticketTtlMs: number;
  readonly #maxPerClient: number;
  /** Is this token connected right now (on any node)? Live tokens never expire. */
  readonly #isLive: (tokenHash: string) => Promise<boolean>;
  /**
   * Client records by id, read once. Safe to keep: a client's record never changes but for its
   * revocation, which deletes its tokens in the same transaction (so no token leads here any more),
   * and the server also drops a revoked client from here when the change poll reports it.
   */
  readonly #clients = new Map<string, ClientRecord>();

  constructor(opts: {
    store: Store;
    clock: Clock;
    idleTtlS: number;
    ticketTtlS: number;
    maxPerClient?: number;
    isLive: (tokenHash: string) => Promise<boolean>;
  }) {
    this.#maxPerClient = opts.maxPerClient ?? Number.MAX_SAFE_INTEGER;
    this.#store = opts.store;
    this.#clock = opts.clock;
    this.#idleTtlMs = opts.idleTtlS * 1000;
    this.#ticketTtlMs = opts.ticketTtlS * 1000;
    this.#isLive = opts.isLive;
  }

  /**
   * A new token for the client, keeping it at most `tokens.maxPerClient` tokens (its least recently
   * used token without a live connection is revoked to make room). `token: undefined` when every
   * token it holds has a live connection; `revoked`: how many tokens made room.
   */
  async issue(clientId: string): Promise<{ token: string | undefined; revoked: number }> {
    const token = randomSecret();
    const now = this.#clock.now();
    const r = await this.#store.createTokenCapped({ hash: sha256(token), clientId, createdAt: now, lastUsedAt: now }, this.#maxPerClient);
    return { token: r.created ? token : undefined, revoked: r.revoked.length };
  }

  /** Validates a presented token (`clientId` given when the client named itself, e.g. header client_id). */
  async check(token: string, clientId?: string): Promise<TokenCheck> {
    if (!isSecretFormat(token)) return { ok: false, reason: 'malformed' };
    return this.checkHash(sha256(token), clientId);
  }

  async checkHash(hash: string, clientId?: string): Promise<TokenCheck> {
    const token = await this.#store.getToken(hash);
    if (!token) return { ok: false, reason: 'unknown' };
    if (clientId !== undefined && clientId !== token.clientId) return { ok: false, reason: 'client_mismatch' };
    if (this.#clock.now() - token.lastUsedAt > this.#idleTtlMs && !(await this.#isLive(hash))) {
      await this.#store.deleteToken(hash);
      return { ok: false, reason: 'expired' };
    }
    const client = this.#clients.get(token.clientId) ?? (await this.#store.getClient(token.clientId));
    if (!client || client.revokedAt !== null) return { ok: false, reason: 'revoked' };
    if (this.#clients.size >= MAX_CLIENTS_KEPT) this.#clients.clear();
    this.#clients.set(client.id, client);
    return { ok: true, token, client };
  }

  /** Forget a client's record (it was revoked). */
  forgetClient(clientId: string): void {
    this.#clients.delete(clientId);
  }

  async issueTicket(tokenHash: string): Promise<{ ticket: string; expiresInS: number }> {
    const ticket = randomSecret();
    await this.#store.createTicket(sha256(ticket), tokenHash, this.#clock.now() + this.#ticketTtlMs);
    return { ticket, expiresInS: Math.round(this.#ticketTtlMs / 1000) };
  }

  /**
   * Uses up a ticket without checking it: for an upgrade refused before its ticket was redeemed (a
   * ticket is single use whatever the outcome). Costs what a redeem costs: one hash, one delete.
   */
  async burnTicket(ticket: string): Promise<void> {
    if (isSecretFormat(ticket)) await this.#store.consumeTicket(sha256(ticket), this.#clock.now());
  }

  /** Single use: the ticket is gone after this call, valid or not. */
  async redeemTicket(ticket: string): Promise<TokenCheck> {
    if (!isSecretFormat(ticket)) return { ok: false, reason: 'malformed' };
    const tokenHash = await this.#store.consumeTicket(sha256(ticket), this.#clock.now());
    if (!tokenHash) return { ok: false, reason: 'unknown' };
    return this.checkHash(tokenHash);
  }
}
