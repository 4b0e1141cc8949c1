import { createHmac } from 'node:crypto';
import Database from 'better-sqlite3';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exceedsJsonDepth } from '../../src/core/json-depth.ts';
import { postEnvelope, postRaw } from '../helpers/e2e.ts';
import { cli, eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';

/**
 * limits.maxJsonDepth (default 64) at every entrance: both ingest routes, WebSocket publishes, the
 * programmatic API, webhooks and connector records. Deeper JSON is `invalid_json` naming the depth.
 */

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const SECRET = 'webhook-secret-0123456789';
const sign = (body: string) => {
  const t = Math.floor(Date.now() / 1000);
  return `t=${t},v1=${createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex')}`;
};

let h: Harness;
let inbox: string;

beforeAll(async () => {
  inbox = tempDir('hubcast-depth-');
  h = await startServer({
    connectors: [
      { name: 'hook', type: 'webhook', topic: 'depth.hook', secret: SECRET },
      { name: 'files', type: 'file', topic: 'depth.file', path: inbox, pollMs: 20 },
    ],
  });
});
afterAll(async () => h?.close());

const tooDeep = { code: 'invalid_json', message: expect.stringMatching(/nested deeper than 64 levels \(limits\.maxJsonDepth\)/) };

describe('limits.maxJsonDepth on every entrance', () => {
  it('the byte scan counts [ and { outside strings, escapes handled, without recursion', () => {
    expect(exceedsJsonDepth(nested(64), 64)).toBe(false);
    expect(exceedsJsonDepth(nested(65), 64)).toBe(true);
    expect(exceedsJsonDepth(`{"a":"${'[{'.repeat(100)}","b":[1]}`, 2)).toBe(false);
    expect(exceedsJsonDepth(`["\\"[[[[", [[1]]]`, 3)).toBe(false);
    expect(exceedsJsonDepth(`["\\\\", [[[1]]]]`, 3)).toBe(true);
    expect(exceedsJsonDepth(nested(1_000_000), 64)).toBe(true);
  });

  it('POST /entity/<topic>: 64 levels 202, 65 and 130,000 levels 400 invalid_json', async () => {
    expect((await postRaw(h, 'depth.raw', nested(64), 'application/json')).status).toBe(202);
    for (const depth of [65, 130_000]) {
      const r = await postRaw(h, 'depth.raw', nested(depth), 'application/json');
      expect({ status: r.status, error: r.body.error }, String(depth)).toEqual({ status: 400, error: tooDeep });
    }
  });

  it('POST /entity: data of 64 levels 202, 65 and 100,000 levels 400 invalid_json', async () => {
    expect((await postEnvelope(h, `{"topic":"depth.env","data":${nested(64)}}`)).status).toBe(202);
    for (const depth of [65, 100_000]) {
      const r = await postEnvelope(h, `{"topic":"depth.env","data":${nested(depth)}}`);
      expect({ status: r.status, error: r.body.error }, String(depth)).toEqual({ status: 400, error: tooDeep });
    }
  });

  it('WebSocket publish: an error frame invalid_json that echoes the id; the programmatic API throws', async () => {
    const c = await h.connect(await h.register(await h.createClient({ subscribe: ['depth.>'], publish: ['depth.>'] })));
    c.send(`{"type":"publish","topic":"depth.ws","id":"p1","data":${nested(65)}}`);
    expect(await c.next('error')).toMatchObject({ ...tooDeep, id: 'p1' });
    c.send(`{"type":"publish","topic":"depth.ws","id":"p2","data":${nested(64)}}`);
    expect(await c.next('ack')).toMatchObject({ id: 'p2', topic: 'depth.ws' });
    await expect(h.server.publish('depth.api', JSON.parse(nested(65)))).rejects.toMatchObject(tooDeep);
    await c.close();
  });

  it('webhook: a JSON body deeper than the limit is 400 invalid_json before it is parsed', async () => {
    const body = nested(65);
    const r = await h.fetchJson('/hooks/hook', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubcast-signature': sign(body) },
      body,
    });
    expect({ status: r.status, error: r.body.error }).toEqual({ status: 400, error: tooDeep });
    // And its size is capped like every body: limits.maxMessageBytes plus 64 KiB.
    const big = JSON.stringify({ pad: 'x'.repeat(262_144 + 64 * 1024) });
    const tooBig = await h.fetchJson('/hooks/hook', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hubcast-signature': sign(big) },
      body: big,
    });
    expect({ status: tooBig.status, code: tooBig.body.error?.code }).toEqual({ status: 413, code: 'payload_too_large' });
  });

  it('connector records deeper than the limit go to the dead-letter store with the reason', async () => {
    await writeFile(join(inbox, 'deep.ndjson'), `${nested(65)}\n${nested(120_000)}\n${nested(3)}\n`);
    const list = await eventually(
      async () => {
        const rows = JSON.parse((await cli(['dlq', 'list', '--json', '--data-dir', h.dataDir])).out).dead_letters as {
          key: string;
          reason: string;
        }[];
        return rows.length >= 2 ? rows : undefined;
      },
      10_000,
      'two dead letters',
    );
    // Kept as received (they used to be stored as "[object Object]" when JSON.stringify gave up).
    const db = new Database(join(h.dataDir, 'connectors.db'), { readonly: true });
    const stored = db.prepare('SELECT kind, value FROM dlq ORDER BY id').all() as { kind: string; value: Buffer }[];
    db.close();
    expect(stored.map((d) => [d.kind, d.value.toString()])).toEqual([
      ['json', nested(65)],
      ['json', nested(120_000)],
    ]);
    expect(list!.map((d) => d.reason)).toEqual([
      expect.stringMatching(/nested deeper than 64 levels|nested too deeply/),
      expect.stringMatching(/nested deeper than 64 levels|nested too deeply/),
    ]);
  });
});
