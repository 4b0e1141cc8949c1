import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { GapInfo, HubcastError, Message } from '../../packages/client/src/index.ts';
import { fileStorage } from '../../packages/client/src/node.ts';
import { eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { recordStates } from './helpers/checker.ts';
import { closeHubs, hub, subscribed } from './helpers/hubs.ts';
import { freePort } from './helpers/net.ts';

/** Positions, gaps, patterns, publish acks and failures, presence: what an application relies on. */

let h: Harness | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await closeHubs();
  await h?.close();
  h = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const offsets = (ms: Message[]) => ms.map((m) => m.offset);

describe('SDK: positions', () => {
  it('fileStorage: a new client (a restarted process) resumes after the last message handed to the old one', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['p.>'] });
    const dir = tempDir('hubcast-pos-');
    dirs.push(dir);
    const file = join(dir, 'positions.json');
    const first = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, storage: fileStorage(file) });
    const got1: Message[] = [];
    const sub1 = first.subscribe('p.t');
    sub1.on('message', (m) => got1.push(m));
    await subscribed(sub1);
    for (let i = 1; i <= 3; i++) await h.ingest('p.t', { i });
    await eventually(() => got1.length === 3);
    await first.close();
    for (let i = 4; i <= 5; i++) await h.ingest('p.t', { i });

    const second = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, storage: fileStorage(file) });
    const got2: Message[] = [];
    const sub2 = second.subscribe('p.t');
    sub2.on('message', (m) => got2.push(m));
    const info = await new Promise((r) => sub2.on('subscribed', r));
    expect(info).toMatchObject({ since: { offset: 3 }, recovered: true });
    await eventually(() => got2.length === 2);
    expect(offsets(got2)).toEqual([4, 5]);
    expect(sub2.position).toMatchObject({ offset: 5 });
  });

  it('a gap (history trimmed past the position) is reported before the messages that follow', async () => {
    h = await startServer({ history: { size: 3 } });
    const creds = await h.createClient({ subscribe: ['g.>'] });
    const token = await h.register(creds);
    for (let i = 1; i <= 8; i++) await h.ingest('g.t', { i });
    const x = hub({ url: h.base, token });
    const events: (GapInfo | Message)[] = [];
    const sub = x.subscribe('g.t', { since: { offset: 2 } });
    sub.on('gap', (g) => events.push(g));
    sub.on('message', (m) => events.push(m));
    await eventually(() => events.length === 4);
    expect(events[0]).toMatchObject({ topic: 'g.t', reason: 'trimmed', since: { offset: 2 }, position: { offset: 2 } });
    expect(events.slice(1).map((m) => (m as Message).offset)).toEqual([6, 7, 8]);
  });

  it('a new epoch (history lost) is a gap; delivery goes on from the new history', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['g.>'] });
    const token = await h.register(creds);
    await h.ingest('g.e', { i: 1 });
    const x = hub({ url: h.base, token });
    const gaps: GapInfo[] = [];
    const sub = x.subscribe('g.e', { since: { offset: 7, epoch: 'some-other-epoch' } });
    sub.on('gap', (g) => gaps.push(g));
    const got: Message[] = [];
    sub.on('message', (m) => got.push(m));
    await subscribed(sub);
    expect(gaps).toEqual([expect.objectContaining({ reason: 'epoch', position: expect.objectContaining({ offset: 1 }) })]);
    await h.ingest('g.e', { i: 2 });
    await eventually(() => got.length === 1);
    expect(got[0]).toMatchObject({ offset: 2, data: { i: 2 } });
  });
});

describe('SDK: patterns', () => {
  it('a pattern delivers its topics; after a reconnect it is resubscribed live and says gap', async () => {
    h = await startServer({ port: await freePort() });
    const creds = await h.createClient({ subscribe: ['pt.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, backoff: { initialMs: 50, maxMs: 200 } });
    const sub = x.subscribe('pt.*');
    const got: Message[] = [];
    const gaps: GapInfo[] = [];
    sub.on('message', (m) => got.push(m));
    sub.on('gap', (g) => gaps.push(g));
    await subscribed(sub);
    await h.ingest('pt.a', 1);
    await h.ingest('pt.b', 2);
    await eventually(() => got.length === 2);
    expect(got.map((m) => m.topic)).toEqual(['pt.a', 'pt.b']);
    const again = subscribed(sub, 10_000);
    await h.restart();
    await again;
    expect(gaps).toEqual([{ topic: 'pt.*', reason: 'pattern' }]);
  });
});

describe('SDK: publish', () => {
  it('acks with the offset; a repeated key is acknowledged once; a publish waits for the connection', async () => {
    h = await startServer({ ws: { maxPayload: 65536 } });
    const creds = await h.createClient({ subscribe: ['c.>'], publish: ['c.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    const pending = x.publish('c.r', { n: 1 }, { key: 'same' }); // starts the connection
    expect(await pending).toEqual({ topic: 'c.r', offset: 1, key: 'same' });
    expect(await x.publish('c.r', { n: 1 }, { key: 'same' })).toEqual({ topic: 'c.r', offset: 1, key: 'same' });
    expect((await x.publish('c.r', { n: 2 })).offset).toBe(2);
    await expect(x.publish('c.r', { n: 3 }, { key: 'same' })).rejects.toMatchObject({ code: 'idempotency_key_conflict' });
    // Bytes travel as data_base64 and reach subscribers as a binary message.
    const sub = x.subscribe('c.bin');
    const got: Uint8Array[] = [];
    sub.on('message', (m) => got.push(m.binary!));
    await subscribed(sub);
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff); // more than one btoa chunk
    expect((await x.publish('c.bin', bytes.subarray(0, 3))).offset).toBe(1);
    expect((await x.publish('c.bin', bytes.buffer.slice(0, 40_000))).offset).toBe(2);
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect([...got[0]!]).toEqual([...bytes.subarray(0, 3)]);
    expect(Buffer.from(got[1]!).equals(Buffer.from(bytes.subarray(0, 40_000)))).toBe(true);
  });

  it('times out without a connection', async () => {
    const port = await freePort(); // nothing listens there
    const x = hub({ url: `http://127.0.0.1:${port}`, token: 'nope', backoff: { initialMs: 50, maxMs: 100 } });
    const t0 = Date.now();
    await expect(x.publish('c.r', 1, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(x.state).not.toBe('closed');
  });

  it('a receive-only client that publishes: the publish fails with publish_not_allowed, the client stops (4501)', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['c.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    const states = recordStates(x);
    const errors: HubcastError[] = [];
    x.on('error', (e) => errors.push(e));
    await x.connect();
    await expect(x.publish('c.r', 1)).rejects.toMatchObject({ code: 'publish_not_allowed' });
    await eventually(() => x.state === 'closed');
    expect(errors[0]).toMatchObject({ closeCode: 4501, action: 'stop' });
    expect(states.filter((s) => s.state === 'connecting')).toHaveLength(1);
  });
});

describe('SDK: subscribe refusals and presence', () => {
  it('a forbidden topic ends that subscription with an error; the others go on', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['ok.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    const bad = x.subscribe('secret.t');
    const good = x.subscribe('ok.t');
    const err = await new Promise<HubcastError>((r) => bad.on('error', r));
    expect(err.code).toBe('forbidden');
    expect(bad.closed).toBe(true);
    await eventually(() => good.position !== undefined, 3000, 'ok.t subscribed');
    await h.ingest('ok.t', 1);
    const it = good[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ topic: 'ok.t', offset: 1 });
    expect(x.state).toBe('connected');
  });

  it('presence: join and leave events of other connections', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['room.>'], presence: ['room.>'] });
    const a = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    const sub = a.subscribe('room.1', { presence: true });
    const events: string[] = [];
    sub.on('join', (e) => events.push('join ' + e.client_id));
    sub.on('leave', (e) => events.push('leave ' + e.client_id));
    await subscribed(sub);
    const b = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    await subscribed(b.subscribe('room.1'));
    await eventually(() => events.length === 1);
    await b.close();
    await eventually(() => events.length === 2);
    expect(events).toEqual([`join ${creds.client_id}`, `leave ${creds.client_id}`]);
  });
});
