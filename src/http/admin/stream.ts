import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { HubcastError } from '../../core/errors.ts';
import type { ConnectionEvent, Gateway } from '../../gateway/gateway.ts';
import type { Logger } from '../../logger.ts';
import type { Store } from '../../store/store.ts';
import { parseQuery } from './common.ts';
import { callerOf } from './guard.ts';
import type { Overview } from './overview.ts';

export interface StreamDeps {
  gateway: Gateway;
  overview: () => Promise<Overview>;
  store: Store;
  /** `admin.maxStreams`. */
  maxStreams: number;
  log: Logger;
}

/** Bytes queued for a stream's reader before the stream is ended (a reader that stopped reading). */
const MAX_QUEUED_BYTES = 256 * 1024;
/** Connection events per stream and second; beyond, they are counted and reported as `dropped`. */
const CONNECTION_EVENTS_PER_S = 200;
/** How often a stream's admin key is checked again (a revoked key ends its streams). */
const KEY_CHECK_EVERY_S = 5;

interface Stream {
  res: ServerResponse;
  keyHash: string;
  keyId: string;
  budget: number;
  dropped: number;
}

/**
 * `GET /admin/api/stream`: server-sent events for the dashboard — an `overview` event every second
 * (the body of `GET /admin/api/overview`, computed once for every stream) and a `connection` event for
 * each connection opened or closed on this node. Bounded: at most `admin.maxStreams` streams (more get
 * `429 connection_limit`), at most 200 connection events per stream and second (then one `dropped`
 * event a second with the count), and a stream whose reader lets 256 KiB queue up is ended. A
 * stream ends too when its admin key is revoked (checked every 5 s) and when the server closes.
 */
export class AdminStreams {
  readonly #d: StreamDeps;
  readonly #streams = new Set<Stream>();
  #timer: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #ticks = 0;
  #closed = false;

  constructor(d: StreamDeps) {
    this.#d = d;
  }

  get size(): number {
    return this.#streams.size;
  }

  routes(app: FastifyInstance): void {
    app.get('/admin/api/stream', async (req, reply) => {
      parseQuery({}, req.query);
      if (this.#closed) throw new HubcastError('unavailable', 'the server is shutting down', { retryAfterS: 1 });
      if (this.#streams.size >= this.#d.maxStreams)
        throw new HubcastError('connection_limit', `at most ${this.#d.maxStreams} admin event streams may be open (admin.maxStreams)`, {
          retryAfterS: 5,
        });
      const who = callerOf(req);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Accel-Buffering': 'no',
      });
      const s: Stream = { res, keyHash: who.keyHash, keyId: who.keyId, budget: CONNECTION_EVENTS_PER_S, dropped: 0 };
      this.#add(s);
      // The reader went away (its half of the connection closed): the response is never ended, so
      // the socket is destroyed here rather than left half-open until the server closes.
      res.on('close', () => {
        this.#remove(s);
        if (!res.writableEnded) res.destroy();
      });
      res.write(': hubcast admin stream\n\n');
      // The first overview at once, not a second later.
      void this.#d.overview().then(
        (o) => this.#send(s, 'overview', o),
        () => undefined,
      );
      return reply;
    });
  }

  /** Ends every stream (the server is closing). */
  closeAll(): void {
    this.#closed = true;
    for (const s of [...this.#streams]) this.#end(s);
  }

  #add(s: Stream): void {
    this.#streams.add(s);
    if (this.#streams.size === 1) {
      this.#unwatch = this.#d.gateway.watchConnections((e) => this.#connection(e));
      this.#timer = setInterval(() => void this.#tick(), 1000);
      this.#timer.unref();
    }
  }

  #remove(s: Stream): void {
    if (!this.#streams.delete(s) || this.#streams.size > 0) return;
    this.#unwatch?.();
    this.#unwatch = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #end(s: Stream): void {
    this.#remove(s);
    if (!s.res.writableEnded) s.res.end();
  }

  #send(s: Stream, event: string, data: unknown): void {
    if (s.res.writableEnded || s.res.destroyed) return;
    if (s.res.writableLength > MAX_QUEUED_BYTES) {
      this.#d.log.warn({ admin_key: s.keyId }, 'admin event stream ended: its reader fell behind');
      s.res.destroy();
      this.#remove(s);
      return;
    }
    s.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #connection(e: ConnectionEvent): void {
    for (const s of this.#streams) {
      if (s.budget > 0) {
        s.budget--;
        this.#send(s, 'connection', e);
      } else s.dropped++;
    }
  }

  async #tick(): Promise<void> {
    const checkKeys = ++this.#ticks % KEY_CHECK_EVERY_S === 0;
    for (const s of this.#streams) {
      if (s.dropped) this.#send(s, 'dropped', { connection_events: s.dropped });
      s.dropped = 0;
      s.budget = CONNECTION_EVENTS_PER_S;
    }
    let overview: Overview;
    try {
      overview = await this.#d.overview();
    } catch (err) {
      this.#d.log.error({ err }, 'admin event stream: the overview failed');
      return;
    }
    for (const s of this.#streams) this.#send(s, 'overview', overview);
    if (checkKeys) await this.#checkKeys();
  }

  async #checkKeys(): Promise<void> {
    for (const s of [...this.#streams]) {
      let valid: boolean;
      try {
        valid = (await this.#d.store.findKey(s.keyHash)) !== undefined;
      } catch {
        continue; // the store is down: the key is not known to be revoked
      }
      if (!valid) {
        this.#d.log.info({ admin_key: s.keyId }, 'admin event stream ended: its key was revoked');
        this.#end(s);
      }
    }
  }
}
