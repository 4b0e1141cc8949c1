import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import {
  clusterServicesUp,
  killAll,
  randomName,
  sleep,
  startCluster,
  type BrokerType,
  type Cluster,
  type ClusterNode,
} from '../test/helpers/cluster.ts';

/**
 * The Jepsen-style checker of issue 10: three nodes (test/helpers/cluster.ts), publishers POSTing to
 * random nodes with idempotency keys, consumers on random nodes resuming with `since` after every
 * close, and faults during the run: kill -9 of a node (then a restart), a cut of one node's broker
 * link, of a node's store link, and of a broker link across the end of the run (TCP proxies;
 * refused for a few seconds, then accepted).
 *
 * After a quiet settling period, the whole history is read back and checked against what the
 * publishers were told and what every consumer received:
 * - lost: an acknowledged offset some consumer never received (or not in history at all);
 * - duplicated: an offset a consumer received twice, or one message id at two offsets in history;
 * - reordered: an offset received after a higher one of the same topic;
 * - missed: a committed offset that was never acknowledged and that a consumer skipped (a gap);
 * - corrupt: a consumer received at an offset another message than history holds there;
 * - ack mismatches: a 202 whose offset holds another message in history.
 * Committed-but-unacknowledged messages (the 202 was lost with a node) are allowed and reported.
 *
 *   node --import tsx scripts/cluster-check.ts --broker redis|nats|postgres [--seconds 60]
 *     [--publishers 4] [--consumers 6] [--topics 3] [--lease 2] [--json]
 *
 * Exit code 0 when nothing was violated, 1 otherwise, 2 for a usage or setup error. `--broker
 * memory` checks one SQLite node (kill -9 only): the checker's own self-test, no server needed.
 */

export interface CheckOptions {
  broker: BrokerType;
  /** Length of the faulty run, before the settling period. */
  seconds?: number;
  publishers?: number;
  consumers?: number;
  topics?: number;
  leaseS?: number;
  /** Bound on the settling period (every consumer catches up), ms. */
  settleMs?: number;
  /** Pause of each publisher between two messages, ms. */
  paceMs?: number;
  /** Progress lines (faults, phases). */
  log?: (line: string) => void;
}

export interface Fault {
  what: string;
  node: string;
  atS: number;
  endS?: number;
}

export interface CheckReport {
  broker: BrokerType;
  nodes: number;
  seconds: number;
  leaseS: number;
  publishers: number;
  consumers: number;
  topics: number;
  faults: Fault[];
  requests: number;
  retries: number;
  acknowledged: number;
  gaveUp: number;
  /** Answers by status (`network` for a failed request). */
  statuses: Record<string, number>;
  history: { messages: number; perTopic: Record<string, number>; gaps: number; idsAtTwoOffsets: number };
  /** In history but never acknowledged to its publisher (allowed). */
  unacknowledgedCommitted: number;
  reconnects: number;
  closeCodes: Record<string, number>;
  /** Refused connection attempts by HTTP status (409 while a dead node's lease runs, 503…). */
  refusals: Record<string, number>;
  /** Longest time from a consumer's close to having resubscribed everywhere, ms. */
  maxReconnectMs: number;
  /** Longest time from a consumer's close to having everything that existed when it resubscribed, ms. */
  maxCatchUpMs: number;
  /** Time from the end of the run until every consumer had the whole history, ms. */
  settleMs: number;
  lost: number;
  duplicated: number;
  reordered: number;
  missed: number;
  corrupt: number;
  ackMismatches: number;
  epochChanges: number;
  notRecovered: number;
  violations: string[];
  ok: boolean;
  /** When not ok: each node's cluster and broker metrics at the end of the run. */
  diagnostics?: string[];
}

interface Ack {
  topic: string;
  offset: number;
  id: string;
}

/** The cluster of the run in progress, closed (schema dropped) on SIGINT. */
let active: Cluster | undefined;

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const jitter = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
const bump = (m: Record<string, number>, k: string | number) => void (m[k] = (m[k] ?? 0) + 1);

/** One publisher: POST /entity to random nodes; a failed attempt is retried elsewhere with the same key. */
async function publisher(
  cluster: Cluster,
  n: number,
  topics: string[],
  o: { stop: () => boolean; paceMs: number },
  out: {
    acks: Ack[];
    gaveUp: string[];
    statuses: Record<string, number>;
    rejected: string[];
    counts: { requests: number; retries: number };
  },
): Promise<void> {
  for (let seq = 1; !o.stop(); seq++) {
    const id = `p${n}-${seq}`;
    const topic = pick(topics);
    const giveUpAt = Date.now() + 15_000;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) out.counts.retries++;
      out.counts.requests++;
      let status: number | 'network';
      let body: any;
      try {
        const res = await fetch(cluster.randomNode().url + '/entity', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.ingestKey}` },
          body: JSON.stringify({ topic, id, data: { id } }),
          signal: AbortSignal.timeout(5000),
        });
        status = res.status;
        body = await res.json().catch(() => undefined);
      } catch {
        status = 'network';
      }
      bump(out.statuses, status);
      if (status === 202) {
        out.acks.push({ topic, offset: body?.offset as number, id });
        if (body?.id !== id || body?.topic !== topic) out.rejected.push(`${id}: 202 names ${JSON.stringify(body)}`);
        break;
      }
      if (status !== 'network' && status < 500 && status !== 429) {
        out.rejected.push(`${id}: ${status} ${JSON.stringify(body)}`);
        break;
      }
      if (Date.now() > giveUpAt) {
        out.gaveUp.push(id);
        break;
      }
      await sleep(jitter(50, 200));
    }
    await sleep(o.paceMs);
  }
}

interface TopicState {
  seen: Set<number>;
  max: number;
  epoch: string | undefined;
  duplicated: number;
  reordered: number;
  gapsSeen: number;
  corrupt: { offset: number; id: string }[];
  /** Offset → message id as received (first time). */
  ids: Map<number, string>;
  /** Offset → the connection (index in `sessions`) it first came on. */
  via: Map<number, number>;
  /** Offsets received twice or out of order, with the connections (for the report; the first 20). */
  odd: string[];
}

/** A consumer that reconnects to a random node after every close and resubscribes with `since`. */
export class Consumer {
  readonly topics = new Map<string, TopicState>();
  reconnects = 0;
  notRecovered = 0;
  epochChanges = 0;
  maxReconnectMs = 0;
  maxCatchUpMs = 0;
  readonly closeCodes: Record<string, number> = {};
  readonly refusals: Record<string, number> = {};
  /** Where each connection went: node, when (s since start), how it ended. */
  readonly sessions: { node: string; atS: number; endS?: number; code?: number }[] = [];
  readonly #t0 = Date.now();
  #stopped = false;
  #ws: WebSocket | undefined;
  #running: Promise<void> | undefined;

  constructor(
    readonly cluster: Cluster,
    readonly token: string,
    topics: string[],
  ) {
    for (const t of topics)
      this.topics.set(t, {
        seen: new Set(),
        max: 0,
        epoch: undefined,
        duplicated: 0,
        reordered: 0,
        gapsSeen: 0,
        corrupt: [],
        ids: new Map(),
        via: new Map(),
        odd: [],
      });
  }

  start(): void {
    this.#running = this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#ws?.terminate();
    await this.#running;
  }

  /** The connections it had, for a violation's message: `0: b 0.1–12.3 s (1006), 1: c 13.0–`. */
  sessionLog(all = false): string {
    const from = all ? 0 : Math.max(0, this.sessions.length - 6);
    return (
      this.sessions
        .slice(from)
        .map((x, i) => `${from + i}: ${x.node} ${x.atS.toFixed(1)}–${x.endS === undefined ? '' : `${x.endS.toFixed(1)} s (${x.code})`}`)
        .join(', ') || 'none'
    );
  }

  /** Whether it has received every offset up to `latest[topic]`. */
  caughtUp(latest: Map<string, number>): boolean {
    return [...latest].every(([t, n]) => (this.topics.get(t)?.max ?? 0) >= n);
  }

  async #loop(): Promise<void> {
    let closedAt = Date.now();
    let first = true;
    while (!this.#stopped) {
      const opened = await this.#session(this.cluster.randomNode(), closedAt, first);
      // Reconnect and catch-up times run from the end of the last connection that was open.
      if (opened) {
        first = false;
        closedAt = Date.now();
      }
      if (!this.#stopped) await sleep(opened ? jitter(10, 100) : jitter(100, 300));
    }
  }

  /** One connection, until it closes; resolves whether it got as far as `welcome`. */
  #session(node: ClusterNode, closedAt: number, first: boolean): Promise<boolean> {
    return new Promise((resolve) => {
      let welcomed = false;
      const ws = new WebSocket(node.wsUrl, { headers: { authorization: `Bearer ${this.token}` }, handshakeTimeout: 5000 });
      this.#ws = ws;
      const pendingSubs = new Set(this.topics.keys());
      const latestAt = new Map<string, number>();
      let caughtUp = false;
      let session: { node: string; atS: number; endS?: number; code?: number } | undefined;
      // A connection that never gets its welcome (a hung node) is given up.
      const guard = setTimeout(() => ws.terminate(), 10_000);
      const checkCaughtUp = () => {
        if (caughtUp || first || pendingSubs.size > 0) return;
        if ([...latestAt].every(([t, n]) => this.topics.get(t)!.max >= n)) {
          caughtUp = true;
          this.maxCatchUpMs = Math.max(this.maxCatchUpMs, Date.now() - closedAt);
        }
      };
      ws.on('unexpected-response', (_req, res) => {
        bump(this.refusals, res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.on('error', () => {});
      ws.on('message', (raw: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        const f = JSON.parse(raw.toString()) as Record<string, any>;
        switch (f.type) {
          case 'welcome': {
            welcomed = true;
            session = { node: node.id, atS: (Date.now() - this.#t0) / 1000 };
            this.sessions.push(session);
            clearTimeout(guard);
            if (!first) this.reconnects++;
            for (const [topic, st] of this.topics) {
              const since = st.epoch === undefined ? { offset: st.max } : { offset: st.max, epoch: st.epoch };
              ws.send(JSON.stringify({ type: 'subscribe', topic, id: topic, since }));
            }
            break;
          }
          case 'subscribed': {
            const st = this.topics.get(f.topic as string);
            if (!st) break;
            if (st.epoch !== undefined && f.epoch !== st.epoch) this.epochChanges++;
            st.epoch = f.epoch as string;
            if (st.max > 0 && f.recovered !== true) this.notRecovered++;
            latestAt.set(f.topic as string, f.offset as number);
            pendingSubs.delete(f.topic as string);
            if (pendingSubs.size === 0 && !first) this.maxReconnectMs = Math.max(this.maxReconnectMs, Date.now() - closedAt);
            checkCaughtUp();
            break;
          }
          case 'message': {
            this.receive(f.topic as string, f.offset as number, (f.data as { id?: string } | undefined)?.id ?? '?');
            checkCaughtUp();
            break;
          }
          case 'error':
            // A subscribe that failed (e.g. unavailable while the store is cut): start over elsewhere.
            if (typeof f.id === 'string' && this.topics.has(f.id)) ws.terminate();
            break;
        }
      });
      ws.on('close', (code) => {
        clearTimeout(guard);
        if (welcomed && !this.#stopped) bump(this.closeCodes, code);
        if (session && !this.#stopped) Object.assign(session, { endS: (Date.now() - this.#t0) / 1000, code });
        resolve(welcomed);
      });
    });
  }

  /** Records one delivered message (public for the checker's own test of its analysis). */
  receive(topic: string, offset: number, id: string): void {
    const st = this.topics.get(topic);
    if (!st) return;
    const session = this.sessions.length - 1;
    if (st.seen.has(offset)) {
      st.duplicated++;
      if (st.odd.length < 20) st.odd.push(`${offset} again (first on connection ${st.via.get(offset)}, again on ${session})`);
      return;
    }
    if (offset < st.max) {
      st.reordered++;
      if (st.odd.length < 20) st.odd.push(`${offset} after ${st.max} (connection ${session})`);
    } else if (offset > st.max + 1) st.gapsSeen++;
    st.seen.add(offset);
    st.ids.set(offset, id);
    st.via.set(offset, session);
    st.max = Math.max(st.max, offset);
  }
}

/**
 * Reads each topic's whole history through a fresh connection (since offset 0), on a random running
 * node; a node that refuses (one still recovering its store link answers 503) is left for another.
 */
async function readHistory(
  cluster: Cluster,
  token: string,
  topics: string[],
  timeoutMs: number,
): Promise<Map<string, Map<number, string>>> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await readHistoryOnce(cluster.randomNode(true), token, topics, Math.max(1000, deadline - Date.now()));
    } catch (err) {
      if (Date.now() + 500 >= deadline) throw new Error(`history not read after ${attempt} attempt(s): ${(err as Error).message}`);
      await sleep(500);
    }
  }
}

function readHistoryOnce(node: ClusterNode, token: string, topics: string[], timeoutMs: number): Promise<Map<string, Map<number, string>>> {
  const out = new Map(topics.map((t) => [t, new Map<number, string>()]));
  const latest = new Map<string, number>();
  const ws = new WebSocket(node.wsUrl, { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 5000 });
  let timer: NodeJS.Timeout | undefined;
  return new Promise<Map<string, Map<number, string>>>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`history not read within ${timeoutMs} ms from node ${node.id}`)), timeoutMs);
    const done = () => {
      if (latest.size === topics.length && topics.every((t) => out.get(t)!.size >= latest.get(t)!)) resolve(out);
    };
    ws.on('error', (err) => reject(err));
    ws.on('unexpected-response', (_q, res) => reject(new Error(`node ${node.id} refused the history reader: HTTP ${res.statusCode}`)));
    ws.on('close', (code) => reject(new Error(`node ${node.id} closed the history reader: ${code}`)));
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const f = JSON.parse(raw.toString()) as Record<string, any>;
      if (f.type === 'welcome')
        for (const t of topics) ws.send(JSON.stringify({ type: 'subscribe', topic: t, id: t, since: { offset: 0 } }));
      else if (f.type === 'subscribed') latest.set(f.topic as string, f.offset as number);
      else if (f.type === 'message') out.get(f.topic as string)?.set(f.offset as number, (f.data as { id?: string })?.id ?? '?');
      else if (f.type === 'error') reject(new Error(`history reader on node ${node.id}: ${JSON.stringify(f)}`));
      done();
    });
  }).finally(() => {
    clearTimeout(timer);
    ws.terminate();
  });
}

/** The `hubcast_cluster_*` and `hubcast_broker_*` samples of every running node. */
async function clusterMetrics(cluster: Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const n of cluster.nodes.filter((x) => x.running)) {
    try {
      const text = await (await fetch(n.url + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
      for (const line of text.split('\n')) if (/^hubcast_(cluster|broker)_/.test(line)) out.push(`${n.id}: ${line}`);
    } catch (err) {
      out.push(`${n.id}: /metrics failed: ${(err as Error).message}`);
    }
  }
  return out;
}

/** Registers a token for `creds` on some running node (retried: a node may be down). */
async function registerSomewhere(cluster: Cluster, creds: { client_id: string; client_secret: string }): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await cluster.register(cluster.randomNode(true), creds);
    } catch (err) {
      if (i >= 20) throw err;
      await sleep(250);
    }
  }
}

/** Runs the check; the report says whether anything was violated. */
export async function runClusterCheck(opts: CheckOptions): Promise<CheckReport> {
  const o = {
    seconds: 60,
    publishers: 4,
    consumers: 6,
    topics: 3,
    leaseS: 2,
    settleMs: 30_000,
    paceMs: 20,
    log: () => {},
    ...opts,
  };
  const single = o.broker === 'memory';
  // Times in the report count from the start of the run (setup before it is negative).
  let started = Date.now() + 3_600_000;
  const at = () => Number(((Date.now() - started) / 1000).toFixed(1));
  const log = (line: string) => o.log(`${at().toFixed(1).padStart(6)} s  ${line}`);
  const setupStart = Date.now();
  const cluster = await startCluster({
    broker: o.broker,
    nodes: single ? 1 : 3,
    leaseS: o.leaseS,
    // Nothing is trimmed during the run: the final read-back is the whole history.
    extraConfig: { history: { size: 1_000_000 } },
  });
  active = cluster;
  const consumers: Consumer[] = [];
  try {
    const topics = Array.from({ length: o.topics }, (_, i) => `check.t${i}`);
    const creds = await cluster.createClient({ subscribe: ['check.>'], name: randomName('checker-') });
    for (let i = 0; i < o.consumers; i++) consumers.push(new Consumer(cluster, await registerSomewhere(cluster, creds), topics));
    const auditToken = await registerSomewhere(cluster, creds);
    const runStart = Date.now();
    o.log(`setup: ${cluster.nodes.length} node(s) up (broker ${o.broker}) in ${((runStart - setupStart) / 1000).toFixed(1)} s`);
    started = runStart;
    log(`running ${o.seconds} s`);
    for (const c of consumers) c.start();

    const pub = {
      acks: [] as Ack[],
      gaveUp: [] as string[],
      rejected: [] as string[],
      statuses: {} as Record<string, number>,
      counts: { requests: 0, retries: 0 },
    };
    const stopAt = runStart + o.seconds * 1000;
    const publishing = Promise.all(
      Array.from({ length: o.publishers }, (_, n) =>
        publisher(cluster, n, topics, { stop: () => Date.now() >= stopAt, paceMs: o.paceMs }, pub),
      ),
    );

    // The nemesis: one fault after another, each at its share of the run (or once the previous is over).
    const faults: Fault[] = [];
    const waitUntil = async (share: number) => {
      const t = runStart + share * o.seconds * 1000 - Date.now();
      if (t > 0) await sleep(t);
    };
    const cutMs = Math.min(3000, o.seconds * 100);
    // The nemesis: kill -9 at 15% of the run (the node restarts a lease later, in the background, so
    // that a slow start does not push the next faults out of the run), then a broker cut at 45%, a
    // store cut at 70% and a broker cut across the end of the run, each on a running node.
    const nemesis = (async () => {
      await waitUntil(0.15);
      const victim = cluster.randomNode();
      const kill: Fault = { what: 'kill -9', node: victim.id, atS: at() };
      faults.push(kill);
      log(`kill -9 node ${victim.id}`);
      await victim.kill('SIGKILL');
      const restarted = (async () => {
        if (!single) await sleep(2 * o.leaseS * 1000 + 1000);
        await victim.restart();
        kill.endS = at();
        log(`node ${victim.id} restarted`);
      })();
      if (single) return restarted;
      for (const [share, link] of [
        [0.45, 'broker'],
        [0.7, 'store'],
        // Across the end of the run: the last publications of that node find no broker, and nothing
        // is published after them (the other nodes must learn of them all the same).
        [0.92, 'broker'],
      ] as const) {
        await waitUntil(share);
        // Not the killed node while it is still coming back.
        const node = pick(cluster.nodes.filter((n) => n !== victim || kill.endS !== undefined));
        const fault: Fault = { what: `${link} link cut`, node: node.id, atS: at() };
        faults.push(fault);
        log(`cut node ${node.id}'s ${link} link for ${cutMs} ms`);
        await node.cut(link, cutMs);
        fault.endS = at();
        log(`node ${node.id}'s ${link} link accepted again`);
      }
      await restarted;
    })();
    await Promise.all([publishing, nemesis]);
    const runEnd = Date.now();
    log(`run over: ${pub.acks.length} acknowledged; settling`);

    const history = await readHistory(cluster, auditToken, topics, o.settleMs);
    const latest = new Map([...history].map(([t, m]) => [t, m.size === 0 ? 0 : Math.max(...m.keys())]));
    const settleDeadline = Date.now() + o.settleMs;
    while (!consumers.every((c) => c.caughtUp(latest)) && Date.now() < settleDeadline) await sleep(50);
    const settleMs = Date.now() - runEnd;
    log(`settled after ${settleMs} ms`);
    await Promise.all(consumers.map((c) => c.stop()));

    const report = analyse({ o, nodes: cluster.nodes.length, faults, pub, history, latest, consumers, settleMs });
    // For a failed check: what each node's cluster metrics said at the end (gap fills, broker drops…).
    if (!report.ok) report.diagnostics = await clusterMetrics(cluster);
    return report;
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
    await cluster.close();
    active = undefined;
  }
}

/** The verdict from what the publishers were told, the history read back and what each consumer got. */
export function analyse(x: {
  o: Required<Omit<CheckOptions, 'log'>>;
  nodes: number;
  faults: Fault[];
  pub: {
    acks: Ack[];
    gaveUp: string[];
    rejected: string[];
    statuses: Record<string, number>;
    counts: { requests: number; retries: number };
  };
  history: Map<string, Map<number, string>>;
  latest: Map<string, number>;
  consumers: Consumer[];
  settleMs: number;
}): CheckReport {
  const violations: string[] = [];
  const note = (what: string) => void (violations.length < 50 && violations.push(what));
  const acked = new Map<string, Set<number>>([...x.history.keys()].map((t) => [t, new Set<number>()]));
  const ackedIds = new Set<string>();
  let lost = 0;
  let ackMismatches = 0;

  // History: offsets 1..N without a gap, each message id at one offset.
  let gaps = 0;
  let idsAtTwoOffsets = 0;
  const where = new Map<string, string>();
  for (const [t, m] of x.history) {
    for (let off = 1; off <= x.latest.get(t)!; off++) {
      const id = m.get(off);
      if (id === undefined) {
        gaps++;
        note(`history of ${t} has no offset ${off}`);
        continue;
      }
      if (where.has(id)) {
        idsAtTwoOffsets++;
        note(`message ${id} is in history twice: ${where.get(id)} and ${t}@${off}`);
      }
      where.set(id, `${t}@${off}`);
    }
  }

  // Every acknowledgement is in history, at its offset.
  for (const a of x.pub.acks) {
    ackedIds.add(a.id);
    acked.get(a.topic)?.add(a.offset);
    const there = x.history.get(a.topic)?.get(a.offset);
    if (there === undefined) {
      lost++;
      note(`acknowledged ${a.id} (${a.topic}@${a.offset}) is not in history`);
    } else if (there !== a.id) {
      ackMismatches++;
      note(`acknowledged ${a.id} at ${a.topic}@${a.offset}, where history holds ${there}`);
    }
  }
  for (const r of x.pub.rejected) note(`publisher: ${r}`);
  const unacknowledgedCommitted = [...where.keys()].filter((id) => !ackedIds.has(id)).length;

  // Every consumer: each offset of history once, in order, the message history holds there.
  let duplicated = idsAtTwoOffsets;
  let reordered = 0;
  let missed = 0;
  let corrupt = 0;
  x.consumers.forEach((c, i) => {
    for (const [t, st] of c.topics) {
      duplicated += st.duplicated;
      reordered += st.reordered;
      if (st.duplicated || st.reordered)
        note(
          `consumer ${i}: ${st.duplicated} duplicate(s), ${st.reordered} out of order on ${t}: ${st.odd.join('; ')} (connections: ${c.sessionLog(true)})`,
        );
      const h = x.history.get(t)!;
      const lostHere: number[] = [];
      const missedHere: number[] = [];
      for (let off = 1; off <= x.latest.get(t)!; off++) {
        if (!st.seen.has(off)) {
          (acked.get(t)!.has(off) ? lostHere : missedHere).push(off);
        } else if (h.has(off) && st.ids.get(off) !== h.get(off)) {
          corrupt++;
          note(`consumer ${i} got ${st.ids.get(off)} at ${t}@${off}, history holds ${h.get(off)}`);
        }
      }
      lost += lostHere.length;
      missed += missedHere.length;
      const where = `(last received ${st.max}; connections: ${c.sessionLog()})`;
      if (lostHere.length)
        note(`consumer ${i} never received ${lostHere.length} acknowledged offset(s) of ${t}: ${ranges(lostHere)} ${where}`);
      if (missedHere.length)
        note(`consumer ${i} skipped ${missedHere.length} committed, unacknowledged offset(s) of ${t}: ${ranges(missedHere)} ${where}`);
    }
  });
  const epochChanges = x.consumers.reduce((s, c) => s + c.epochChanges, 0);
  const notRecovered = x.consumers.reduce((s, c) => s + c.notRecovered, 0);
  if (epochChanges) note(`${epochChanges} resubscription(s) answered with another epoch`);
  if (notRecovered) note(`${notRecovered} resubscription(s) with since answered recovered: false`);
  const merge = (pick: (c: Consumer) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const c of x.consumers) for (const [k, v] of Object.entries(pick(c))) out[k] = (out[k] ?? 0) + v;
    return out;
  };

  const ok =
    lost + duplicated + reordered + missed + corrupt + ackMismatches + gaps + epochChanges + notRecovered === 0 &&
    x.pub.rejected.length === 0;
  return {
    broker: x.o.broker,
    nodes: x.nodes,
    seconds: x.o.seconds,
    leaseS: x.o.leaseS,
    publishers: x.o.publishers,
    consumers: x.o.consumers,
    topics: x.o.topics,
    faults: x.faults,
    requests: x.pub.counts.requests,
    retries: x.pub.counts.retries,
    acknowledged: x.pub.acks.length,
    gaveUp: x.pub.gaveUp.length,
    statuses: x.pub.statuses,
    history: {
      messages: [...x.history.values()].reduce((s, m) => s + m.size, 0),
      perTopic: Object.fromEntries([...x.history].map(([t, m]) => [t, m.size])),
      gaps,
      idsAtTwoOffsets,
    },
    unacknowledgedCommitted,
    reconnects: x.consumers.reduce((s, c) => s + c.reconnects, 0),
    closeCodes: merge((c) => c.closeCodes),
    refusals: merge((c) => c.refusals),
    maxReconnectMs: Math.max(0, ...x.consumers.map((c) => c.maxReconnectMs)),
    maxCatchUpMs: Math.max(0, ...x.consumers.map((c) => c.maxCatchUpMs)),
    settleMs: x.settleMs,
    lost,
    duplicated,
    reordered,
    missed,
    corrupt,
    ackMismatches,
    epochChanges,
    notRecovered,
    violations,
    ok,
  };
}

/** `[1,2,3,7,9,10]` → `1–3, 7, 9–10`. */
function ranges(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}–${xs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

const kv = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ') || '-';

/** The report as the text the script prints (and the note quotes). */
export function formatReport(r: CheckReport): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const lines = [
    `hubcast cluster check: broker ${r.broker}, ${r.nodes} node(s), ${r.seconds} s run, lease ${r.leaseS} s, ` +
      `${r.publishers} publishers, ${r.consumers} consumers × ${r.topics} topics`,
    'faults',
    ...r.faults.map(
      (f) =>
        `  ${f.atS.toFixed(1).padStart(6)} s  ${f.what} on node ${f.node}${f.endS === undefined ? '' : ` (over at ${f.endS.toFixed(1)} s)`}`,
    ),
    `publishers   ${r.requests} requests (${r.retries} retries), ${r.acknowledged} acknowledged, ${r.gaveUp} given up; answers ${kv(r.statuses)}`,
    `history      ${r.history.messages} messages (${kv(r.history.perTopic)}), gaps ${r.history.gaps}, ids at two offsets ${r.history.idsAtTwoOffsets}; ` +
      `committed but not acknowledged ${r.unacknowledgedCommitted} (allowed)`,
    `consumers    ${r.reconnects} reconnects (closes ${kv(r.closeCodes)}; refused ${kv(r.refusals)}), max reconnect ${s(r.maxReconnectMs)}, ` +
      `max catch-up ${s(r.maxCatchUpMs)}, settled ${s(r.settleMs)} after the run`,
    `checks       lost ${r.lost} · duplicated ${r.duplicated} · reordered ${r.reordered} · missed ${r.missed} · corrupt ${r.corrupt} · ` +
      `ack mismatches ${r.ackMismatches} · epoch changes ${r.epochChanges} · not recovered ${r.notRecovered}`,
    ...r.violations.map((v) => `  violation: ${v}`),
    ...(r.diagnostics ?? []).map((d) => `  metric ${d}`),
    r.ok ? 'PASS' : 'FAIL',
  ];
  return lines.join('\n');
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        broker: { type: 'string' },
        seconds: { type: 'string' },
        publishers: { type: 'string' },
        consumers: { type: 'string' },
        topics: { type: 'string' },
        lease: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`cluster-check: ${(err as Error).message}\n`);
    return 2;
  }
  const broker = values.broker as BrokerType | undefined;
  const num = (k: string) => (values[k] === undefined ? undefined : Number(values[k]));
  const counts = ['seconds', 'publishers', 'consumers', 'topics', 'lease'].map(num);
  if (
    values.help ||
    !broker ||
    !['redis', 'nats', 'postgres', 'memory'].includes(broker) ||
    counts.some((n) => n !== undefined && !(n > 0))
  ) {
    process.stderr.write(
      'usage: node --import tsx scripts/cluster-check.ts --broker redis|nats|postgres|memory [--seconds 60] [--publishers 4] [--consumers 6] [--topics 3] [--lease 2] [--json]\n',
    );
    return values.help ? 0 : 2;
  }
  if (!(await clusterServicesUp(broker))) {
    process.stderr.write(`cluster-check: the servers for broker ${broker} are not reachable on 127.0.0.1\n`);
    return 2;
  }
  const [seconds, publishers, consumers, topics, leaseS] = counts;
  const report = await runClusterCheck({
    broker,
    ...(seconds === undefined ? {} : { seconds }),
    ...(publishers === undefined ? {} : { publishers }),
    ...(consumers === undefined ? {} : { consumers }),
    ...(topics === undefined ? {} : { topics }),
    ...(leaseS === undefined ? {} : { leaseS }),
    log: (line) => process.stderr.write(line + '\n'),
  });
  process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
  return report.ok ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const interrupted = () => void Promise.allSettled([active?.close(), killAll()]).finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      process.stderr.write(`cluster-check: ${(err as Error)?.stack ?? String(err)}\n`);
      await killAll();
      process.exit(2);
    },
  );
}
