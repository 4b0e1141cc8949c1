import { hostname } from 'node:os';
import type { Leases } from '../cluster/leases.ts';
import type { Clock } from '../core/clock.ts';
import { randomId } from '../core/ids.ts';
import type { Logger } from '../logger.ts';
import { PER_CLIENT_KINDS, PER_CONNECTOR_KINDS, type AlertEvent, type AlertKind, type Alerts } from './alerts.ts';
import { summarize, type AlertDigest } from './notifier.ts';
import type { RecentAlerts } from './recent.ts';

/** Where finished digests go (the spool and the log, see delivery.ts). */
export interface DigestSink {
  start(): Promise<void>;
  /** Takes a digest; never throws, never blocks. */
  accept(digest: AlertDigest): void;
  close(): Promise<void>;
}

export interface AlertManagerOptions {
  groupWaitS: number;
  repeatS: number;
  sink: DigestSink;
  clock: Clock;
  nodeId: string;
  host?: string;
  /** Distinct source IPs counted per group before counting stops (memory bound). Default 1000. */
  maxIpsPerGroup?: number;
  /** Open groups before new per-client groups fold into their kind's group (memory bound). Default 1000. */
  maxGroups?: number;
  /** Period of the shared timer, ms (default groupWaitS/4, between 100 and 250). */
  tickMs?: number;
  /**
   * Cluster mode: one digest per group and window for the whole cluster (see the class comment).
   * Absent (one node): every digest goes out.
   */
  leases?: Leases;
  /** How long a claim may take before the digest goes out anyway, ms. Default 2000. */
  claimTimeoutMs?: number;
  /** Says why a digest was not sent (another node sent it) or was sent unclaimed. */
  log?: Logger;
  /** Told of digests this node did not send because another node sent them (the admin API's recent alerts). */
  recent?: RecentAlerts | undefined;
}

type Settings = Required<Omit<AlertManagerOptions, 'leases' | 'log' | 'recent'>> & Pick<AlertManagerOptions, 'leases' | 'log' | 'recent'>;

const MAX_DETAILS = 5;
const MAX_DETAIL_CHARS = 200;
const TOP_IPS = 5;
/** A run this long of token-ish characters is masked: a safety net should a caller pass a credential. */
const CREDENTIAL_RUN = /[A-Za-z0-9_\-+/=]{24,}/g;

interface Group {
  kind: AlertKind;
  clientId: string | undefined;
  connector: string | undefined;
  /** Since the previous digest: */
  count: number;
  firstAt: number;
  lastAt: number;
  ips: Map<string, number>;
  ipsCapped: boolean;
  details: string[];
  /** The whole group: */
  total: number;
  seq: number;
  /** When the next digest may go out. */
  dueAt: number;
  /** When the previous digest went out (undefined before the first). */
  sentAt: number | undefined;
}

function scrub(detail: string): string {
  const short = detail.length > MAX_DETAIL_CHARS ? detail.slice(0, MAX_DETAIL_CHARS) : detail;
  return short.replace(CREDENTIAL_RUN, '[masked]');
}

/**
 * Groups raised events into digests (see `Alerts` and `AlertDigest` for the contract). One shared,
 * unref'd timer ticks through the open groups; `raise()` only counts.
 *
 * A group's first digest goes out `groupWaitS` after its first event. While events keep coming, at
 * most one further digest per `repeatS` folds everything since the previous one. A group that has
 * no event for a whole `repeatS` window after a digest is forgotten, so the next event opens a new
 * group (and a first digest within `groupWaitS` again).
 *
 * **Cluster mode** (`leases`): every node groups the events it sees, and a digest goes out only if
 * its node wins the claim `alert:<group key>:<window>` (`Leases.claimOnce`), where `window` is
 * `floor(sending time / repeatS)` — aligned to the clock, the same on every node. So two nodes that
 * see the same kind (and client or connector) in one window send one digest, not two: the loser
 * drops its digest (logged at info, with its summary; the digest that went out counts only its own
 * node's events). Repeat digests are then due at the start of the next window rather than `repeatS`
 * after the previous one, so that the nodes' digests compete for the same windows instead of
 * drifting into neighbouring ones; a node's own digests always fall in distinct windows. A claim that
 * fails or does not answer within `claimTimeoutMs` (the store is down) sends the digest anyway: a
 * duplicate alert is better than none. The claim is one per digest, for every channel: the nodes
 * share one alerts configuration, and one node's digest should not go by mail and another's by webhook.
 */
export class AlertManager implements Alerts {
  readonly #o: Settings;
  readonly #groups = new Map<string, Group>();
  /** Digests waiting for their claim (cluster mode); close() lets them settle. */
  readonly #claims = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #state: 'new' | 'started' | 'closed' = 'new';
  #closing: Promise<void> | undefined;

  constructor(options: AlertManagerOptions) {
    this.#o = {
      ...options,
      host: options.host ?? hostname(),
      maxIpsPerGroup: options.maxIpsPerGroup ?? 1000,
      maxGroups: options.maxGroups ?? 1000,
      tickMs: options.tickMs ?? Math.max(100, Math.min(250, options.groupWaitS * 250)),
      claimTimeoutMs: options.claimTimeoutMs ?? 2000,
    };
  }

  /** Open groups (tests, metrics). */
  get groupCount(): number {
    return this.#groups.size;
  }

  raise(e: AlertEvent): void {
    if (this.#state === 'closed') return;
    try {
      const now = this.#o.clock.now();
      const perClient = e.clientId !== undefined && PER_CLIENT_KINDS.has(e.kind);
      const connector = e.connector !== undefined && PER_CONNECTOR_KINDS.has(e.kind) ? e.connector : undefined;
      let key: string = perClient ? e.kind + '|' + e.clientId : connector !== undefined ? e.kind + '@' + connector : e.kind;
      let g = this.#groups.get(key);
      if (!g) {
        let clientId = perClient ? e.clientId : undefined;
        if (this.#groups.size >= this.#o.maxGroups && perClient) {
          // Too many clients at once: fold into the kind's own group rather than grow without bound.
          key = e.kind;
          clientId = undefined;
          g = this.#groups.get(key);
        }
        if (!g) {
          g = this.#open(e.kind, clientId, now);
          g.connector = connector;
          this.#groups.set(key, g);
        }
      }
      if (g.count === 0) g.firstAt = now;
      g.count++;
      g.total++;
      g.lastAt = now;
      if (e.ip) {
        const n = g.ips.get(e.ip);
        if (n !== undefined) g.ips.set(e.ip, n + 1);
        else if (g.ips.size < this.#o.maxIpsPerGroup) g.ips.set(e.ip, 1);
        else g.ipsCapped = true;
      }
      if (e.detail && g.details.length < MAX_DETAILS) {
        const d = scrub(e.detail);
        if (!g.details.includes(d)) g.details.push(d);
      }
    } catch {
      // Never let alerting break the caller's path (contract: raise never throws).
    }
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'started';
    await this.#o.sink.start();
    this.#timer = setInterval(() => this.tick(), this.#o.tickMs);
    this.#timer.unref();
  }

  /**
   * Emits the digests that are due and forgets quiet groups. Runs on the shared timer; tests with a
   * manual clock call it directly.
   */
  tick(): void {
    const now = this.#o.clock.now();
    for (const [key, g] of this.#groups) {
      if (g.count > 0) {
        if (now >= g.dueAt) {
          this.#emit(key, g, now);
          g.dueAt = this.#o.leases ? (this.#window(now) + 1) * this.#o.repeatS * 1000 : now + this.#o.repeatS * 1000;
        }
      } else if (g.sentAt !== undefined && now - g.sentAt >= this.#o.repeatS * 1000) {
        this.#groups.delete(key);
      }
    }
  }

  /** Emits every group's unsent events (they wait in the spool for the next start), then closes the sink. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const wasStarted = this.#state === 'started';
      this.#state = 'closed';
      clearInterval(this.#timer);
      const now = this.#o.clock.now();
      for (const [key, g] of this.#groups) if (g.count > 0) this.#emit(key, g, now);
      this.#groups.clear();
      await Promise.all(this.#claims);
      if (wasStarted) await this.#o.sink.close();
    })();
    return this.#closing;
  }

  #open(kind: AlertKind, clientId: string | undefined, now: number): Group {
    return {
      kind,
      clientId,
      connector: undefined,
      count: 0,
      firstAt: now,
      lastAt: now,
      ips: new Map(),
      ipsCapped: false,
      details: [],
      total: 0,
      seq: 0,
      dueAt: now + this.#o.groupWaitS * 1000,
      sentAt: undefined,
    };
  }

  #window(now: number): number {
    return Math.floor(now / (this.#o.repeatS * 1000));
  }

  #emit(key: string, g: Group, now: number): void {
    const top: { ip: string; count: number }[] = [];
    for (const [ip, count] of g.ips) {
      if (top.length === TOP_IPS && count <= top[TOP_IPS - 1]!.count) continue;
      let i = top.length;
      while (i > 0 && top[i - 1]!.count < count) i--;
      top.splice(i, 0, { ip, count });
      if (top.length > TOP_IPS) top.pop();
    }
    const digest: AlertDigest = {
      id: randomId('al_', 9),
      kind: g.kind,
      ...(g.clientId !== undefined ? { clientId: g.clientId } : {}),
      ...(g.connector !== undefined ? { connector: g.connector } : {}),
      count: g.count,
      firstAt: new Date(g.firstAt).toISOString(),
      lastAt: new Date(g.lastAt).toISOString(),
      sources: g.ips.size,
      sourcesCapped: g.ipsCapped,
      topIps: top,
      details: g.details,
      seq: ++g.seq,
      total: g.total,
      nodeId: this.#o.nodeId,
      host: this.#o.host,
    };
    g.count = 0;
    g.ips = new Map();
    g.ipsCapped = false;
    g.details = [];
    g.sentAt = now;
    if (this.#o.leases) this.#claim(this.#o.leases, digest, key, now);
    else this.#o.sink.accept(digest);
  }

  /** Cluster mode: the digest goes out if this node wins its group's window, or if nobody can say. */
  #claim(leases: Leases, digest: AlertDigest, key: string, now: number): void {
    const window = this.#window(now);
    const name = `alert:${key}:${window}`;
    const about = { alert: digest.kind, digest_id: digest.id, group: key, window };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer in time')), this.#o.claimTimeoutMs);
      timer.unref();
    });
    const claimed = Promise.race([leases.claimOnce(name, 2 * this.#o.repeatS * 1000), timeout])
      .then(
        (won) => {
          if (won) return this.#o.sink.accept(digest);
          this.#o.recent?.suppressed(digest);
          this.#o.log?.info(
            { ...about, summary: summarize(digest) },
            "alert digest not sent: this window's digest for its group went out already",
          );
        },
        (err: unknown) => {
          const error = String((err as Error)?.message ?? err).slice(0, 200);
          this.#o.log?.warn({ ...about, error }, 'alert digest sent unclaimed: the cluster store did not answer (it may go out twice)');
          this.#o.sink.accept(digest);
        },
      )
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        this.#claims.delete(claimed);
      });
    this.#claims.add(claimed);
  }
}
