import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HubcastError } from '../../core/errors.ts';
import type { Logger } from '../../logger.ts';
import { iso, limitParam, parseQuery } from './common.ts';
import { callerOf } from './guard.ts';

/** What an admin may do that changes something: each is audited. */
export type AdminAction =
  | 'clients.create'
  | 'clients.revoke'
  | 'keys.create'
  | 'keys.revoke'
  | 'connections.kick'
  | 'topics.publish'
  | 'dead_letters.retry'
  | 'dead_letters.drop';

export interface AuditEntry {
  at: string;
  key_id: string;
  key_name: string;
  address: string;
  action: AdminAction;
  /** What it was done to: a client, key or connection id, a topic, a dead-letter id. */
  target: string;
  /** `ok`, another outcome (`already_revoked`, `dead_lettered`) or the error code it failed with. */
  result: string;
}

/**
 * The audit trail of admin actions: one info line per action (`msg: "admin action"`, with the admin
 * key's id and name, the source address, the action, its target and result; never a secret), and the
 * last `max` actions in memory for `GET /admin/api/audit` (this node's, newest first; lost on
 * restart — the log is the durable trail).
 */
export class AuditLog {
  readonly #log: Logger;
  readonly #max: number;
  readonly #now: () => number;
  readonly #ring: AuditEntry[] = [];
  #next = 0;

  constructor(opts: { log: Logger; max?: number; now?: () => number }) {
    this.#log = opts.log;
    this.#max = opts.max ?? 500;
    this.#now = opts.now ?? Date.now;
  }

  record(req: FastifyRequest, action: AdminAction, target: string, result: string): void {
    const who = callerOf(req);
    this.#log.info({ admin_key: who.keyId, key_name: who.keyName, ip: who.ip, action, target, result }, 'admin action');
    const entry: AuditEntry = { at: iso(this.#now()), key_id: who.keyId, key_name: who.keyName, address: who.ip, action, target, result };
    if (this.#ring.length < this.#max) this.#ring.push(entry);
    else this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#max;
  }

  /**
   * Runs an action and records it: on success `outcome` may name its result (default `ok`) and
   * its target (a created id); a HubcastError is recorded by its code and thrown on, anything else
   * as `internal_error`.
   */
  async run<T>(
    req: FastifyRequest,
    action: AdminAction,
    target: string,
    fn: () => Promise<T>,
    outcome: (value: T) => { result?: string; target?: string } = () => ({}),
  ): Promise<T> {
    let value: T;
    try {
      value = await fn();
    } catch (err) {
      this.record(req, action, target, err instanceof HubcastError ? err.code : 'internal_error');
      throw err;
    }
    const o = outcome(value);
    this.record(req, action, o.target ?? target, o.result ?? 'ok');
    return value;
  }

  /** Newest first, at most `limit`. */
  list(limit = this.#max): AuditEntry[] {
    const out: AuditEntry[] = [];
    const n = this.#ring.length;
    for (let i = 1; i <= n && out.length < limit; i++) out.push({ ...this.#ring[(this.#next - i + n * 2) % n]! });
    return out;
  }
}

/** GET /admin/api/audit */
export function auditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get('/admin/api/audit', async (req) => {
    const q = parseQuery({ limit: limitParam }, req.query);
    return { actions: audit.list(q.limit) };
  });
}
