import { subjectOf, summarize, type AlertDigest } from './notifier.ts';

/** How a digest fared on one channel: the latest outcome. */
export interface ChannelOutcome {
  channel: 'email' | 'webhook' | 'log';
  /** `suppressed`: another node of the cluster sent this window's digest of the group. */
  status: 'sent' | 'failed' | 'suppressed';
  /** ISO 8601 time of that outcome. */
  at: string;
}

/** One digest as the admin API shows it (GET /admin/api/alerts). */
export interface RecentAlert {
  id: string;
  kind: string;
  /** ISO 8601: when this node first recorded an outcome of it (it went out, or was suppressed). */
  at: string;
  /** The alert e-mail's subject. */
  subject: string;
  summary: string;
  count: number;
  client_id?: string;
  connector?: string;
  sent: ChannelOutcome[];
}

/**
 * The last `max` digests of this node with what became of them on each channel, newest last: a
 * bounded ring in memory (lost on restart; the log and the spool are the durable record). Fed by
 * the delivery (sent / failed per attempt, the latest wins) and, in a cluster, by the alert manager
 * (suppressed: another node sent the window's digest). Never holds anything a digest does not.
 */
export class RecentAlerts {
  readonly #max: number;
  readonly #channels: readonly ChannelOutcome['channel'][];
  readonly #now: () => number;
  /** Insertion order = age: a Map is the ring (the oldest entry is the first key). */
  readonly #byId = new Map<string, RecentAlert>();

  constructor(opts: { max?: number; channels: readonly ChannelOutcome['channel'][]; now?: () => number }) {
    this.#max = opts.max ?? 200;
    this.#channels = opts.channels;
    this.#now = opts.now ?? Date.now;
  }

  /** Records the latest outcome of `digest` on `channel` (adds the digest when it is new here). */
  outcome(digest: AlertDigest, channel: ChannelOutcome['channel'], status: ChannelOutcome['status']): void {
    const entry = this.#entry(digest);
    const at = new Date(this.#now()).toISOString();
    const i = entry.sent.findIndex((s) => s.channel === channel);
    if (i === -1) entry.sent.push({ channel, status, at });
    else entry.sent[i] = { channel, status, at };
  }

  /** The digest was not sent by this node: another node sent its group's digest for the window. */
  suppressed(digest: AlertDigest): void {
    for (const c of this.#channels) this.outcome(digest, c, 'suppressed');
  }

  /** Newest first, at most `limit`. */
  list(limit = this.#max): RecentAlert[] {
    const all = [...this.#byId.values()];
    const out: RecentAlert[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) out.push({ ...all[i]!, sent: all[i]!.sent.map((s) => ({ ...s })) });
    return out;
  }

  /** Digests made since `sinceMs` (ms since the epoch). */
  countSince(sinceMs: number): number {
    let n = 0;
    for (const a of this.#byId.values()) if (Date.parse(a.at) >= sinceMs) n++;
    return n;
  }

  #entry(d: AlertDigest): RecentAlert {
    let entry = this.#byId.get(d.id);
    if (entry) return entry;
    const summary = summarize(d);
    entry = {
      id: d.id,
      kind: d.kind,
      at: new Date(this.#now()).toISOString(),
      subject: subjectOf(d),
      summary,
      count: d.count,
      ...(d.clientId !== undefined ? { client_id: d.clientId } : {}),
      ...(d.connector !== undefined ? { connector: d.connector } : {}),
      sent: [],
    };
    this.#byId.set(d.id, entry);
    if (this.#byId.size > this.#max) this.#byId.delete(this.#byId.keys().next().value!);
    return entry;
  }
}
