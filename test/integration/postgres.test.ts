import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { z } from 'zod';
import { FatalSourceError, type Connector } from '../../src/connectors/connector.ts';
import { create, settings } from '../../src/connectors/postgres.ts';
import { recordingContext, runInBackground as start, commonFields } from '../helpers/connector-context.ts';
import { requireService, TcpProxy } from '../helpers/tcp-proxy.ts';

const BASE = 'postgres://postgres@127.0.0.1:5432/test';
const up = await requireService('PostgreSQL', 5432);

let seq = 0;
const unique = (prefix: string) => `${prefix}_${process.pid}_${Date.now().toString(36)}_${seq++}`;

function connector(s: Partial<z.input<typeof settings>> & { url?: string }): Connector {
  const parsed = settings.parse({ url: BASE, ...s });
  const common = commonFields('pg-test', 'postgres', 'orders.{{region}}');
  return create({ ...common, ...parsed }, { log: recordingContext().ctx.log });
}

describe.skipIf(!up)('postgres connector (real PostgreSQL on 127.0.0.1:5432)', () => {
  let admin: pg.Client;
  let table: string;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: BASE });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });
  beforeEach(async () => {
    table = unique('hubcast_outbox');
    await admin.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, region text NOT NULL, body jsonb, amount numeric, created_at timestamptz NOT NULL DEFAULT now())`,
    );
  });
  afterEach(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  const insert = async (...regions: string[]) => {
    for (const region of regions)
      await admin.query(`INSERT INTO ${table} (region, body, amount) VALUES ($1, $2, 12.50)`, [region, { region }]);
  };
  const query = () => `SELECT id, region, body, amount, created_at FROM ${table} WHERE id > $1 ORDER BY id LIMIT 100`;

  it('emits rows inserted before and after start, in order, keyed by the cursor; stores the cursor', async () => {
    await insert('eu', 'us', 'eu');
    const rc = recordingContext();
    const run = start(connector({ query: query(), pollMs: 30, batchSize: 2 }), rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, '3 rows');
    await insert('ap', 'eu');
    await rc.waitFor(() => rc.records.length === 5, 5000, '5 rows');
    await run.stop();

    expect(rc.records.map((r) => r.key)).toEqual(['1', '2', '3', '4', '5']);
    expect(rc.batches[0]).toHaveLength(2); // batchSize
    const first = rc.records[0]!;
    expect(first.kind).toBe('json');
    expect(first.value).toMatchObject({ id: '1', region: 'eu', body: { region: 'eu' }, amount: '12.50' });
    expect((first.value as { created_at: string }).created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(rc.state.get('cursor')).toBe('5');
    expect(rc.connectedCount).toBe(1);
    expect(JSON.stringify(rc.logs)).not.toContain('postgres://');
  });

  it('table mode builds the query and sets meta.table', async () => {
    await insert('eu', 'us');
    const rc = recordingContext();
    const run = start(connector({ table, pollMs: 30 }), rc);
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 rows');
    await run.stop();
    expect(rc.records.map((r) => [r.key, r.meta])).toEqual([
      ['1', { table }],
      ['2', { table }],
    ]);
  });

  it('advances the cursor only after emit resolved: a rejected batch is emitted again on the next run', async () => {
    await insert('eu', 'us', 'eu');
    const rc = recordingContext();
    const c = connector({ query: query(), pollMs: 30 });
    rc.failNextEmit(new Error('store unavailable'));
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect(rc.attempts[0]!.map((r) => r.key)).toEqual(['1', '2', '3']);
    expect(rc.records).toHaveLength(0);
    expect(rc.state.get('cursor')).toBeUndefined();

    const run = start(c, rc); // what the supervisor does
    await rc.waitFor(() => rc.records.length === 3, 5000, 'the same 3 rows again');
    await run.stop();
    expect(rc.records.map((r) => r.key)).toEqual(['1', '2', '3']);
    expect(rc.state.get('cursor')).toBe('3');
  });

  it('resumes from the stored cursor', async () => {
    await insert('eu', 'us', 'eu');
    const rc = recordingContext({ state: new Map([['cursor', '2']]) });
    const run = start(connector({ query: query(), pollMs: 30 }), rc);
    await rc.waitFor(() => rc.records.length === 1, 5000, 'row 3');
    await new Promise((r) => setTimeout(r, 100));
    await run.stop();
    expect(rc.records.map((r) => r.key)).toEqual(['3']);
  });

  it('keeps microsecond precision of a timestamp cursor (rows within one millisecond are not fetched again)', async () => {
    for (const us of ['000001', '000002', '000003'])
      await admin.query(`INSERT INTO ${table} (region, created_at) VALUES ('eu', $1)`, [`2024-01-01 00:00:00.${us}+00`]);
    const rc = recordingContext();
    const q = `SELECT id, region, created_at FROM ${table} WHERE created_at > $1 ORDER BY created_at`;
    const run = start(connector({ query: q, cursorColumn: 'created_at', cursorStart: '-infinity', pollMs: 10 }), rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, '3 rows');
    await new Promise((r) => setTimeout(r, 200)); // ~20 more polls
    await run.stop();
    expect(rc.records).toHaveLength(3);
    expect(new Set(rc.records.map((r) => r.key)).size).toBe(3);
    expect(rc.records.map((r) => (r.value as { created_at: string }).created_at)).toEqual(Array(3).fill('2024-01-01T00:00:00.000Z'));
  });

  it('a NOTIFY on the listen channel wakes the poll at once (pollMs 60 s)', async () => {
    const channel = unique('hubcast_wake');
    const rc = recordingContext();
    const run = start(connector({ query: query(), listen: channel, pollMs: 60_000 }), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    await new Promise((r) => setTimeout(r, 100)); // the first (empty) poll is done; now it sleeps for 60 s
    const t0 = Date.now();
    await insert('eu');
    await admin.query(`NOTIFY ${channel}`);
    await rc.waitFor(() => rc.records.length === 1, 2000, 'the row after NOTIFY');
    expect(Date.now() - t0).toBeLessThan(2000);
    await run.stop();
    expect(rc.records[0]!.key).toBe('1');
  });

  it('NOTIFY-only mode emits JSON payloads keyed by keyField; skips (and logs) bad payloads', async () => {
    const channel = unique('hubcast_events');
    const rc = recordingContext();
    const c = create(
      {
        name: 'pg-notify',
        type: 'postgres',
        topic: 't',
        pipeline: [],
        retry: { attempts: 1, initialMs: 1, maxMs: 1 },
        enabled: true,
        ...settings.parse({ url: BASE, listen: channel, keyField: 'eventId' }),
      },
      { log: rc.ctx.log },
    );
    const run = start(c, rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    for (const payload of [
      JSON.stringify({ eventId: 'a', n: 1 }),
      'not json',
      JSON.stringify({ n: 2 }),
      JSON.stringify({ eventId: 7, n: 3 }),
    ])
      await admin.query('SELECT pg_notify($1, $2)', [channel, payload]);
    await rc.waitFor(() => rc.records.length === 2, 3000, '2 records');
    await rc.waitFor(() => rc.logs.filter((l) => l.level === 40).length === 2, 3000, '2 warnings');
    await run.stop();
    expect(rc.records).toEqual([
      { key: 'a', value: { eventId: 'a', n: 1 }, kind: 'json', meta: { channel } },
      { key: '7', value: { eventId: 7, n: 3 }, kind: 'json', meta: { channel } },
    ]);
    expect(JSON.stringify(rc.logs)).not.toContain('not json');
  });

  it('a missing table or column is a FatalSourceError', async () => {
    const rc = recordingContext();
    const missingTable = connector({ query: 'SELECT id FROM hubcast_no_such_table WHERE id > $1' });
    const err = await missingTable.run(rc.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    expect((err as Error).message).toContain('42P01');

    const missingColumn = connector({ query: `SELECT id, nosuch FROM ${table} WHERE id > $1` });
    const err2 = await missingColumn.run(recordingContext().ctx).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(FatalSourceError);
    expect((err2 as Error).message).toContain('42703');

    await insert('eu');
    const noCursor = connector({ query: `SELECT region FROM ${table} WHERE id > $1` });
    await expect(noCursor.run(recordingContext().ctx)).rejects.toBeInstanceOf(FatalSourceError);
  });

  it('an unknown role or database is a FatalSourceError; the password never appears in errors or logs', async () => {
    const rc = recordingContext();
    const role = create(
      {
        name: 'pg-role',
        type: 'postgres',
        topic: 't',
        pipeline: [],
        retry: { attempts: 1, initialMs: 1, maxMs: 1 },
        enabled: true,
        ...settings.parse({ url: 'postgres://nosuchuser:s3cret-pw@127.0.0.1:5432/test', table }),
      },
      { log: rc.ctx.log },
    );
    const err = await role.run(rc.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    expect((err as Error).message).toMatch(/28000|28P01/);
    expect(rc.connectedCount).toBe(0);

    const db = connector({ url: 'postgres://postgres:s3cret-pw@127.0.0.1:5432/hubcast_no_such_db', table });
    const err2 = await db.run(rc.ctx).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(FatalSourceError);
    expect((err2 as Error).message).toContain('3D000');
    for (const e of [err, err2]) expect(`${(e as Error).message} ${(e as Error).stack}`).not.toContain('s3cret-pw');
    expect(JSON.stringify(rc.logs)).not.toContain('s3cret-pw');
  });

  it('an unreachable server is a plain (retryable) error', async () => {
    const proxy = await TcpProxy.start(5432);
    proxy.refuse();
    try {
      const c = connector({ url: `postgres://postgres@127.0.0.1:${proxy.port}/test`, table, connectTimeoutMs: 2000 });
      const err = await c.run(recordingContext().ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(FatalSourceError);
    } finally {
      await proxy.close();
    }
  });

  it('returns promptly on abort, while connected and idle', async () => {
    const rc = recordingContext();
    const run = start(connector({ table, pollMs: 60_000 }), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 5000, 'connected');
    const t0 = Date.now();
    await run.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('impossible combinations are TypeErrors', () => {
    expect(() => connector({})).toThrow(new TypeError('connector pg-test: set table, query or listen'));
    expect(() => connector({ table: 't', query: 'SELECT 1 WHERE 1 > $1' })).toThrow('either table or query');
    expect(() => connector({ query: 'SELECT * FROM t' })).toThrow('$1');
    expect(() => connector({ listen: 'ch' })).toThrow('keyField is required');
    expect(() => connector({ table: 't', keyField: 'id' })).toThrow('keyField applies only');
    expect(() => settings.parse({ url: 'mysql://x' })).toThrow();
    expect(() => settings.parse({ url: BASE, bogus: 1 })).toThrow();
  });

  it('fault: the connection is cut mid-stream several times; run throws, is restarted, and every row arrives', async () => {
    const proxy = await TcpProxy.start(5432);
    const rc = recordingContext();
    const c = connector({ url: `postgres://postgres@127.0.0.1:${proxy.port}/test`, query: query(), pollMs: 20, batchSize: 7 });
    const errors: unknown[] = [];
    // A minimal supervisor: run again after each (non-fatal) throw, until aborted.
    const supervisor = (async () => {
      while (!rc.ctx.signal.aborted) {
        try {
          await c.run(rc.ctx);
        } catch (err) {
          if (err instanceof FatalSourceError) throw err;
          errors.push(err);
          await new Promise((r) => setTimeout(r, 30));
        }
      }
    })();
    try {
      const total = 300;
      let cuts = 0;
      for (let i = 0; i < total; i++) {
        await insert(i % 2 ? 'eu' : 'us');
        if (i % 75 === 40) {
          // Cut an established connection (each cut → exactly one throw and one reconnect).
          await rc.waitFor(() => rc.connectedCount === cuts + 1, 5000, 'a reconnect');
          proxy.cut();
          cuts++;
        }
      }
      const keys = () => new Set(rc.records.map((r) => r.key));
      await rc.waitFor(() => keys().size === total, 15_000, `all ${total} rows`);
      rc.abort();
      await supervisor;
      expect(errors).toHaveLength(cuts);
      expect(rc.connectedCount).toBe(cuts + 1);
      expect(proxy.connections).toBe(cuts + 1);
      expect([...keys()].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
      // In order: the first occurrence of every key comes after the previous one.
      const firsts = [...new Map(rc.records.map((r) => [r.key, Number(r.key)])).values()];
      expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
      expect(rc.state.get('cursor')).toBe(String(total));
    } finally {
      rc.abort();
      await supervisor.catch(() => undefined);
      await proxy.close();
    }
  });
});
