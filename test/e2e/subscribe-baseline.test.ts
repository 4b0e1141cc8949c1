import { afterEach, expect, it } from 'vitest';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { startServer, type Harness } from '../helpers/server.ts';

/**
 * A subscription with `since` while the node starts delivering its topic (issue 10: found by the
 * cluster checker on NATS). The subscribe reads History (offset 1); before that answer arrives, the
 * node sees its first live publication of the topic at offset 3 — offset 2 was committed elsewhere
 * and its broker message lost (here: appended to the store directly) — and takes 3 as its baseline.
 * The replay must then run through 3, or offset 2 reaches the consumer neither live nor replayed.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('a replay runs through what the node already delivered when the topic’s first live publication came during the read', async () => {
  let faulty!: FaultyStore;
  h = await startServer({}, { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
  const topic = 'race.t';
  expect((await h.ingest(topic, { n: 1 })).status).toBe(202);
  const c = await h.connect(await h.register(await h.createClient()));

  faulty.late.set('topicState', 400);
  c.send({ type: 'subscribe', topic, since: { offset: 0 }, id: 's' });
  await new Promise((r) => setTimeout(r, 100)); // History was read (offset 1); its answer is held
  // Offset 2: committed by "another node", whose broker message never came.
  await faulty.real.append({ topic, kind: 'json', payload: Buffer.from(JSON.stringify({ n: 2 })), ts: Date.now() });
  // Offset 3: this node's own publication, the first of the topic it delivers.
  const r3 = await h.ingest(topic, { n: 3 });
  expect(r3.body.offset).toBe(3);

  const subscribed = await c.next('subscribed');
  expect(subscribed.offset).toBe(1);
  const got: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await c.next('message');
    got.push([m.offset, m.data]);
  }
  expect(got).toEqual([
    [1, { n: 1 }],
    [2, { n: 2 }],
    [3, { n: 3 }],
  ]);
  // And nothing twice afterwards.
  expect((await h.ingest(topic, { n: 4 })).status).toBe(202);
  expect((await c.next('message')).offset).toBe(4);
});
