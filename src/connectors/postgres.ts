import { z } from 'zod';
import type { Client, CustomTypesConfig, FieldDef, Notification } from 'pg';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { FatalSourceError, type Connector, type ConnectorContext, type SourceRecord } from './connector.ts';

export const settings = z
  .object({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//i, 'a postgres:// or postgresql:// URL')
      .describe(
        'Connection URL, postgres://user:password@host:5432/database (never logged). The password may be left out and given in PGPASSWORD.',
      ),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a table name, optionally schema-qualified (schema.table)')
      .optional()
      .describe('Table to poll (SELECT * … WHERE cursorColumn > cursor ORDER BY cursorColumn LIMIT batchSize); instead of query.'),
    query: z
      .string()
      .min(1)
      .optional()
      .describe('SQL polled with the stored cursor as $1, e.g. SELECT id, region, body FROM outbox WHERE id > $1 ORDER BY id LIMIT 100.'),
    cursorColumn: z
      .string()
      .min(1)
      .default('id')
      .describe('Result column holding the cursor: unique and increasing; its value is also the idempotency key.'),
    cursorStart: z.string().default('0').describe('Cursor before the first row (used while no cursor is stored).'),
    listen: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .describe('Channel to LISTEN on: with table/query a NOTIFY wakes the poll at once; alone, NOTIFY payloads are the records.'),
    keyField: z
      .string()
      .min(1)
      .optional()
      .describe('NOTIFY-only mode (listen without table/query): field of the JSON payload used as the idempotency key. Required there.'),
    pollMs: z.number().int().min(10).default(1000).describe('Delay between polls when the last poll found nothing.'),
    batchSize: z.number().int().min(1).max(10_000).default(100).describe('Records per emit (and the LIMIT of table mode).'),
    connectTimeoutMs: z.number().int().min(100).default(10_000).describe('Give up a connection attempt after this long.'),
    queryTimeoutMs: z.number().int().min(100).default(30_000).describe('Give up a query after this long (then reconnect).'),
  })
  .strict();

export type PostgresSettings = z.output<typeof settings>;
export type PostgresConfig = CommonConnectorConfig & PostgresSettings;

const CURSOR_KEY = 'cursor';
// timestamp, timestamptz, date: read as PostgreSQL's own text so a cursor keeps its full (microsecond)
// precision — a Date would truncate it to milliseconds and the row would be fetched again forever.
const RAW_TEXT_TYPES = new Set([1082, 1114, 1184]);
const TIMESTAMP_TYPES = new Set([1114, 1184]);

/**
 * Errors retrying cannot fix: authentication (class 28), missing database (3D000) or schema (3F000),
 * syntax error / undefined table or column / no privilege (class 42), a cursorStart the column type
 * does not accept (22P02).
 */
function isFatalCode(code: string): boolean {
  return code.startsWith('28') || code.startsWith('42') || code === '3D000' || code === '3F000' || code === '22P02';
}

/** `DatabaseError`: an error the server reported (only those carry a SQLSTATE; an emit rejection never does). */
function classify(err: unknown, DatabaseError: new (...args: never[]) => Error): Error {
  if (err instanceof FatalSourceError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  if (e instanceof DatabaseError && typeof code === 'string' && isFatalCode(code))
    return new FatalSourceError(`postgres: ${e.message} (SQLSTATE ${code})`, { cause: e });
  // Retryable (connection lost, emit rejected…): thrown as is. pg's messages carry host:port at most,
  // never the URL or the password.
  return e;
}

/** A wake-up flag a wait can race: set by NOTIFY, a lost connection or abort; sticky until consumed. */
class Waker {
  #pending = false;
  #resolve: (() => void) | undefined;

  wake(): void {
    this.#pending = true;
    this.#resolve?.();
  }

  async wait(ms: number): Promise<void> {
    if (!this.#pending) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        this.#resolve = done;
        function done() {
          clearTimeout(t);
          resolve();
        }
      });
      this.#resolve = undefined;
    }
    this.#pending = false;
  }
}

/** Row values as JSON: Date → ISO string, bigint → string, Buffer (bytea) → base64. */
function toJson(v: unknown): unknown {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map(toJson);
  return v;
}

function safeTarget(url: string): { host?: string; port?: string; database?: string } {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: u.port || '5432', database: decodeURIComponent(u.pathname.slice(1)) };
  } catch {
    return {};
  }
}

async function endQuietly(client: Client): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      t = setTimeout(resolve, 2000);
      t.unref();
    }),
  ]);
  clearTimeout(t);
}

class PostgresConnector implements Connector {
  readonly name: string;
  readonly type = 'postgres';
  readonly #cfg: PostgresConfig;
  readonly #log: Logger;
  /** NOTIFY-only mode: payloads received and not yet emitted; kept across reconnects. */
  readonly #pending: Notification[] = [];

  constructor(cfg: PostgresConfig, log: Logger) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#log = log;
  }

  async run(ctx: ConnectorContext): Promise<void> {
    const { signal } = ctx;
    if (signal.aborted) return;
    const cfg = this.#cfg;
    const pg = await import('pg');
    const defaultParsers = pg.types;
    const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
      RAW_TEXT_TYPES.has(oid) && format !== 'binary'
        ? (v: string) => v
        : defaultParsers.getTypeParser(oid, format ?? 'text')) as CustomTypesConfig['getTypeParser'];
    const client = new pg.Client({
      connectionString: cfg.url,
      application_name: `hubcast:${cfg.name}`,
      connectionTimeoutMillis: cfg.connectTimeoutMs,
      query_timeout: cfg.queryTimeoutMs,
      types: { getTypeParser },
    });
    const polling = cfg.table !== undefined || cfg.query !== undefined;
    const sql = cfg.query ?? (cfg.table ? tableQuery(cfg, pg.escapeIdentifier) : undefined);
    const waker = new Waker();
    let lost: Error | undefined;
    client.on('error', (err) => {
      lost ??= err;
      waker.wake();
    });
    client.on('end', () => {
      lost ??= new Error('connection ended');
      waker.wake();
    });
    client.on('notification', (n) => {
      if (n.channel !== cfg.listen) return;
      if (!polling) this.#pending.push(n);
      waker.wake();
    });
    const onAbort = () => {
      waker.wake();
      void client.end().catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
      if (cfg.listen) await client.query(`LISTEN ${pg.escapeIdentifier(cfg.listen)}`);
      ctx.connected();
      this.#log.info({ ...safeTarget(cfg.url), listen: cfg.listen, polling }, 'postgres connected');
      const parseTimestamp = (oid: number, v: string): unknown => defaultParsers.getTypeParser(oid, 'text')(v);
      while (!signal.aborted) {
        if (lost) throw lost;
        const progressed = sql ? await this.#poll(ctx, client, sql, parseTimestamp) : await this.#drainNotifications(ctx);
        if (!progressed && !signal.aborted) await waker.wait(cfg.pollMs);
      }
    } catch (err) {
      if (signal.aborted) return; // errors from ending the client on abort
      throw classify(err, pg.DatabaseError);
    } finally {
      signal.removeEventListener('abort', onAbort);
      await endQuietly(client);
    }
  }

  /** One query with the stored cursor; emits its rows in batches. True when it found rows. */
  async #poll(ctx: ConnectorContext, client: Client, sql: string, parseTimestamp: (oid: number, v: string) => unknown): Promise<boolean> {
    const cfg = this.#cfg;
    const cursor = ctx.state.get(CURSOR_KEY) ?? cfg.cursorStart;
    const res = await client.query({ text: sql, values: [cursor] });
    if (res.rows.length === 0) return false;
    const fields: FieldDef[] = res.fields;
    if (!fields.some((f) => f.name === cfg.cursorColumn))
      throw new FatalSourceError(`postgres: the query result has no column "${cfg.cursorColumn}" (cursorColumn)`);
    const meta = cfg.table ? { table: cfg.table } : {};
    for (let i = 0; i < res.rows.length; i += cfg.batchSize) {
      const chunk = res.rows.slice(i, i + cfg.batchSize) as Record<string, unknown>[];
      let last = cursor;
      const records: SourceRecord[] = chunk.map((row) => {
        const c = row[cfg.cursorColumn];
        if (c === null || c === undefined) throw new FatalSourceError(`postgres: a row has a null cursor column "${cfg.cursorColumn}"`);
        last = typeof c === 'string' ? c : String(toJson(c));
        const value: Record<string, unknown> = {};
        for (const f of fields) {
          const v = row[f.name];
          value[f.name] = typeof v === 'string' && TIMESTAMP_TYPES.has(f.dataTypeID) ? toJson(parseTimestamp(f.dataTypeID, v)) : toJson(v);
        }
        return { key: last, value, kind: 'json', meta };
      });
      await ctx.emit(records);
      // Only now is the batch durably accepted: advance the cursor past it.
      ctx.state.set(CURSOR_KEY, last);
      if (ctx.signal.aborted) break;
    }
    return true;
  }

  /** NOTIFY-only mode: emits the queued payloads. True when it emitted something. */
  async #drainNotifications(ctx: ConnectorContext): Promise<boolean> {
    const cfg = this.#cfg;
    let progressed = false;
    while (this.#pending.length > 0 && !ctx.signal.aborted) {
      const batch = this.#pending.slice(0, cfg.batchSize);
      const records: SourceRecord[] = [];
      for (const n of batch) {
        const r = this.#notificationRecord(n);
        if (r) records.push(r);
      }
      if (records.length > 0) await ctx.emit(records);
      this.#pending.splice(0, batch.length);
      progressed = true;
    }
    return progressed;
  }

  #notificationRecord(n: Notification): SourceRecord | undefined {
    const keyField = this.#cfg.keyField as string;
    let value: unknown;
    try {
      value = JSON.parse(n.payload ?? '');
    } catch {
      // Never log the payload itself: it is source data.
      this.#log.warn({ channel: n.channel }, 'postgres NOTIFY payload is not JSON; skipped');
      return undefined;
    }
    const key = value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[keyField] : undefined;
    if (typeof key !== 'string' && typeof key !== 'number') {
      this.#log.warn({ channel: n.channel, keyField }, 'postgres NOTIFY payload has no string or number keyField; skipped');
      return undefined;
    }
    return { key: String(key), value, kind: 'json', meta: { channel: n.channel } };
  }
}

function tableQuery(cfg: PostgresConfig, escapeIdentifier: (s: string) => string): string {
  const table = (cfg.table as string).split('.').map(escapeIdentifier).join('.');
  const col = escapeIdentifier(cfg.cursorColumn);
  return `SELECT * FROM ${table} WHERE ${col} > $1 ORDER BY ${col} LIMIT ${cfg.batchSize}`;
}

export function create(cfg: PostgresConfig, deps: { log: Logger }): Connector {
  if (cfg.table !== undefined && cfg.query !== undefined) throw new TypeError(`connector ${cfg.name}: set either table or query, not both`);
  const polling = cfg.table !== undefined || cfg.query !== undefined;
  if (!polling && cfg.listen === undefined) throw new TypeError(`connector ${cfg.name}: set table, query or listen`);
  if (cfg.query !== undefined && !/\$1\b/.test(cfg.query))
    throw new TypeError(`connector ${cfg.name}: query must compare the cursor column with $1`);
  if (!polling && cfg.keyField === undefined)
    throw new TypeError(`connector ${cfg.name}: keyField is required when listen is used without table or query`);
  if (polling && cfg.keyField !== undefined)
    throw new TypeError(`connector ${cfg.name}: keyField applies only to NOTIFY payloads (listen without table or query)`);
  return new PostgresConnector(cfg, deps.log);
}
