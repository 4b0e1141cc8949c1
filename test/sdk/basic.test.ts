import { afterEach, describe, expect, it } from 'vitest';
import { Hubcast, type Message, type State } from '../../packages/client/src/index.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';

let h: Harness | undefined;
const hubs: Hubcast[] = [];
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((x) => x.close()));
  await h?.close();
  h = undefined;
});

function hub(opts: ConstructorParameters<typeof Hubcast>[0]): Hubcast {
  const x = new Hubcast(opts);
  hubs.push(x);
  return x;
}

describe('SDK: connect, subscribe, publish', () => {
  it('connects with a token, receives ingested messages in order, publishes with an ack', async () => {
    h = await startServer({ ws: { maxPayload: 65536 } });
    const creds = await h.createClient({ subscribe: ['>'], publish: ['chat.>'] });
    const token = await h.register(creds);
    const x = hub({ url: h.base, token });
    const states: State[] = [];
    x.on('state', (s) => states.push(s));
    const sub = x.subscribe('orders.eu');
    const got: Message[] = [];
    sub.on('message', (m) => got.push(m));
    await x.connect();
    await new Promise<void>((r) => sub.on('subscribed', () => r()));
    for (let i = 1; i <= 3; i++) expect((await h.ingest('orders.eu', { n: i })).status).toBe(202);
    await eventually(() => got.length === 3);
    expect(got.map((m) => [m.offset, m.data])).toEqual([
      [1, { n: 1 }],
      [2, { n: 2 }],
      [3, { n: 3 }],
    ]);
    const chat = x.subscribe('chat.room1');
    const it = chat[Symbol.asyncIterator]();
    const ack = await x.publish('chat.room1', { text: 'hi' });
    expect(ack).toMatchObject({ topic: 'chat.room1', offset: 1 });
    expect((await it.next()).value).toMatchObject({ topic: 'chat.room1', offset: 1, data: { text: 'hi' } });
    expect(states.slice(0, 2)).toEqual(['connecting', 'connected']);
    await x.close();
    expect(x.state).toBe('closed');
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('registers with client credentials, receives binary payloads as Uint8Array', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['bin.>'] });
    const x = hub({ url: h.wsBase, clientId: creds.client_id, clientSecret: creds.client_secret });
    const sub = x.subscribe('bin.a');
    await new Promise<void>((r) => sub.on('subscribed', () => r()));
    const it = sub[Symbol.asyncIterator]();
    const res = await fetch(`${h.base}/entity/bin.a`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.ingestKey}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array([0, 1, 2, 255]),
    });
    expect(res.status).toBe(202);
    const m = (await it.next()).value as Message;
    expect(m.topic).toBe('bin.a');
    expect([...m.binary!]).toEqual([0, 1, 2, 255]);
  });
});
