import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { killChildren, startChild, type Child } from '../helpers/child.ts';
import { takeN } from '../helpers/e2e.ts';
import { cli, tempDir } from '../helpers/server.ts';
import { TestClient, type Frame } from '../helpers/ws-client.ts';

/**
 * kill -9 during steady ingest (store.synchronous = full, the default): every message that got a 202
 * is in history after a restart, and a consumer that reconnects with `since` gets everything it
 * missed, in order, once.
 */

const TOPICS = ['crash.a', 'crash.b', 'crash.c', 'crash.d'];
const WORKERS = 8;
const MAX_REQUESTS = 3000;
const MAX_MS = 1500;
/** SIGKILL once this many 202s arrived (or at MAX_MS / 2), while the workers are still going. */
const KILL_AFTER_ACKS = 300;

const dirs: string[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await killChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function connect(p: Child, token: string): Promise<TestClient> {
  const c = new TestClient(`ws://127.0.0.1:${p.port}/ws`, { headers: { authorization: `Bearer ${token}` } });
  clients.push(c);
  await c.opened;
  await c.next('welcome');
  return c;
}

interface Ack {
  topic: string;
  offset: number;
  data: { w: number; i: number };
}

describe('kill -9 during steady ingest', () => {
  it('loses nothing acknowledged; a consumer resumes with since and misses nothing', async () => {
    const dir = tempDir('hubcast-crash-');
    dirs.push(dir);
    const client = JSON.parse(
      (await cli(['clients', 'create', '--name', 'crash', '--subscribe', 'crash.>', '--json', '--data-dir', dir])).out,
    );
    const key = (JSON.parse((await cli(['keys', 'create', '--name', 'crash', '--json', '--data-dir', dir])).out) as { key: string }).key;
    const env = { HUBCAST_HISTORY_SIZE: '100000' };
    const p = await startChild(dir, env);
    const base = `http://127.0.0.1:${p.port}`;
    const reg = await fetch(`${base}/consumers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(client),
    });
    const { token } = (await reg.json()) as { token: string };

    // The consumer, live on every topic, remembers the last offset it saw per topic and its epoch.
    const c = await connect(p, token);
    const epochs = new Map<string, string>();
    for (const t of TOPICS) epochs.set(t, (await c.subscribe(t)).epoch as string);
    const lastSeen = new Map<string, number>(TOPICS.map((t) => [t, 0]));
    const outOfOrder: unknown[] = [];
    c.ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (f.type !== 'message') return;
      const t = f.topic as string;
      if (f.offset !== lastSeen.get(t)! + 1) outOfOrder.push({ topic: t, offset: f.offset, after: lastSeen.get(t) });
      lastSeen.set(t, f.offset as number);
    });

    // Steady ingest from WORKERS concurrent loops, bounded by MAX_REQUESTS and MAX_MS.
    const acks: Ack[] = [];
    let sent = 0;
    let stop = false;
    let active = 0;
    const started = Date.now();
    const worker = async (w: number) => {
      active++;
      try {
        await ingestLoop(w);
      } finally {
        active--;
      }
    };
    const ingestLoop = async (w: number) => {
      for (let i = 0; !stop && sent < MAX_REQUESTS && Date.now() - started < MAX_MS; i++) {
        sent++;
        const topic = TOPICS[(w + i) % TOPICS.length]!;
        const data = { w, i };
        try {
          const r = await fetch(`${base}/entity/${topic}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
            body: JSON.stringify(data),
            signal: AbortSignal.timeout(3000),
          });
          const body = (await r.json()) as { offset: number };
          if (r.status === 202) acks.push({ topic, offset: body.offset, data });
        } catch {
          return; // the server is gone
        }
      }
    };
    const loops = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    const deadline = Date.now() + MAX_MS / 2;
    while (acks.length < KILL_AFTER_ACKS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(active, 'the ingest loops are still running at the kill').toBe(WORKERS);
    await p.kill();
    stop = true;
    await loops;
    expect(acks.length).toBeGreaterThan(0);
    expect(outOfOrder, 'live delivery before the crash: every offset once, in order').toEqual([]);
    expect((await p.exited).signal).toBe('SIGKILL');
    const lastSeenAtCrash = new Map(lastSeen);

    // Restart on the same data folder.
    const q = await startChild(dir, env);

    // 1. Every acknowledged message is in history, at the offset it was acknowledged with.
    const reader = await connect(q, token);
    const history = new Map<string, Map<number, unknown>>();
    for (const t of TOPICS) {
      reader.send({ type: 'subscribe', topic: t, since: { offset: 0 } });
      const sub = await reader.next('subscribed');
      const msgs = await takeN(reader, sub.offset as number, 'message', 10_000);
      expect(msgs.map((m) => m.offset)).toEqual(Array.from({ length: sub.offset as number }, (_, k) => k + 1));
      history.set(t, new Map(msgs.map((m) => [m.offset as number, m.data])));
    }
    const lost = acks.filter((a) => JSON.stringify(history.get(a.topic)!.get(a.offset)) !== JSON.stringify(a.data));
    expect(lost, `acknowledged but not in history after kill -9 (of ${acks.length})`).toEqual([]);
    await reader.close();

    // 2. The consumer reconnects with since = the last offset it saw: everything after it, in order, once.
    const resumed = await new Promise<TestClient>((resolve, reject) => {
      // The reader's connection end may still be in flight on the server (one live connection per token).
      const tryOnce = (n: number) =>
        connect(q, token).then(resolve, (err: { status?: number }) =>
          err.status === 409 && n > 0 ? setTimeout(() => tryOnce(n - 1), 50) : reject(err as Error),
        );
      tryOnce(60);
    });
    for (const t of TOPICS) {
      const since = lastSeenAtCrash.get(t)!;
      resumed.send({ type: 'subscribe', topic: t, since: { offset: since, epoch: epochs.get(t) } });
      const sub = await resumed.next('subscribed');
      expect(sub.recovered).toBe(true);
      const missed = await takeN(resumed, (sub.offset as number) - since, 'message', 10_000);
      expect(missed.map((m) => m.offset)).toEqual(Array.from({ length: (sub.offset as number) - since }, (_, k) => since + k + 1));
      for (const m of missed) expect(m.data).toEqual(history.get(t)!.get(m.offset as number));
      const acked = acks.filter((a) => a.topic === t && a.offset > since).map((a) => a.offset);
      for (const o of acked) expect(missed.some((m) => m.offset === o)).toBe(true);
    }
    // Nothing beyond: a ping answered after the replay, with no further message frame before it.
    resumed.send({ type: 'ping', id: 'end' });
    await resumed.next('pong');
    expect(resumed.all().filter((f) => !Buffer.isBuffer(f) && f.type === 'message')).toEqual([]);
  });
});
