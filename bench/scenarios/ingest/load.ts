/**
 * The ingest scenario's load generator (a worker process, pinned to CPU 1): for each level, N
 * keep-alive HTTP/1.1 connections, each sending `POST /entity` and waiting for the answer before the
 * next (closed loop). A lean client on raw sockets — request bytes built by hand, answers parsed from
 * the status line and Content-Length — so the load side costs a few µs per request and the server is
 * what is measured. Every 202's offset is kept for the durability check.
 *
 * With `batch` > 1 each request is `POST /entities` carrying that many messages of the connection's
 * topic; every result's offset is kept, and a batch whose offsets are not consecutive is counted.
 */
import { connect, type Socket } from 'node:net';
import { bump, Samples } from '../../lib/stats.ts';
import { monoMs, sleep } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import type { IngestLoadConfig, IngestLoadResult, LevelResult } from './protocol.ts';

const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i;
const CHUNKED = /\r\ntransfer-encoding: *chunked/i;

interface Answer {
  status: number;
  body: string;
}

/** One keep-alive connection with at most one request in flight. */
class Conn {
  readonly #sock: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  #dead: Error | undefined;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => this.#fail(Object.assign(new Error(`error_${err.code ?? 'socket'}`))));
    sock.on('close', () => this.#fail(new Error('closed_by_server')));
  }

  static open(port: number, timeoutMs: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => (sock.destroy(), reject(new Error('connect_timeout'))), timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new Conn(sock));
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(`connect_${err.code ?? 'error'}`));
      });
    });
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  request(bytes: Buffer, timeoutMs: number): Promise<Answer> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error('timeout')), timeoutMs);
      this.#waiting = { resolve, reject, timer };
      this.#sock.write(bytes);
    });
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const end = this.#buf.indexOf(HEAD_END);
    if (end === -1) return;
    const head = this.#buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    if (CHUNKED.test(head)) return this.#fail(new Error('chunked_answer'));
    const m = CONTENT_LENGTH.exec(head);
    const len = m ? Number(m[1]) : 0;
    const total = end + 4 + len;
    if (this.#buf.length < total) return;
    const body = this.#buf.toString('utf8', end + 4, total);
    this.#buf = this.#buf.subarray(total);
    const w = this.#waiting;
    if (!w) return this.#fail(new Error('unexpected_answer'));
    this.#waiting = undefined;
    clearTimeout(w.timer);
    w.resolve({ status, body });
  }

  #fail(err: Error): void {
    if (!this.#dead) this.#dead = err;
    this.#sock.destroy();
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  close(): void {
    this.#dead ??= new Error('closed');
    this.#sock.destroy();
  }
}

async function main(cfg: IngestLoadConfig): Promise<void> {
  // Fail early when the server does not answer at all.
  (await Conn.open(cfg.port, 5000)).close();
  await send({ type: 'ready' });

  const acked: Record<string, number[]> = {};
  let ackWithoutOffset = 0;
  const levels: LevelResult[] = [];
  const pad = 'x'.repeat(Math.max(0, cfg.dataBytes - 40));
  const host = `127.0.0.1:${cfg.port}`;
  const auth = cfg.authorization ? `Authorization: ${cfg.authorization}\r\n` : '';
  const batch = Math.max(1, cfg.batch ?? 1);
  const path = batch > 1 ? '/entities' : '/entity';
  const okStatus = batch > 1 ? 200 : 202;

  for (let li = 0; li < cfg.levels.length; li++) {
    const level = cfg.levels[li]!;
    const latency = new Samples(65_536);
    const byStatus: Record<string, number> = {};
    const errors: Record<string, number> = {};
    let sent = 0;
    let completed = 0;
    let messages = 0;
    let itemErrors = 0;
    let nonContiguous = 0;
    const started = monoMs();
    const windowStart = started + level.warmMs;
    const windowEnd = windowStart + level.measureMs;
    // The orchestrator samples the server's CPU on these marks.
    const sentMarks = new Set<string>();
    const mark = (what: 'start' | 'end') => {
      if (sentMarks.has(what)) return;
      sentMarks.add(what);
      void send({ type: `window-${what}-${li}` });
    };
    const markTimers = [setTimeout(() => mark('start'), level.warmMs), setTimeout(() => mark('end'), level.warmMs + level.measureMs)];
    const dataOf = (seq: number) => ({ seq, at: Date.now(), pad: pad.slice(0, Math.max(0, pad.length - String(seq).length)) });
    const bodyOf = (topic: string, seq: number) =>
      Buffer.from(
        JSON.stringify(
          batch > 1
            ? { messages: Array.from({ length: batch }, (_, k) => ({ topic, data: dataOf(seq * batch + k) })) }
            : { topic, data: dataOf(seq) },
        ),
      );
    /** The offsets an answer acknowledges (one, or one per batch result), or undefined when it has none. */
    const offsetsOf = (a: Answer): number[] | undefined => {
      let body: { offset?: unknown; results?: { offset?: unknown }[] };
      try {
        body = JSON.parse(a.body) as typeof body;
      } catch {
        return undefined;
      }
      if (batch === 1) return typeof body.offset === 'number' ? [body.offset] : undefined;
      if (!Array.isArray(body.results) || body.results.length !== batch) return undefined;
      const offs: number[] = [];
      for (const r of body.results) {
        if (typeof r.offset === 'number') offs.push(r.offset);
        else itemErrors++;
      }
      if (offs.some((o, k) => o !== offs[0]! + k)) nonContiguous++;
      return offs;
    };

    const loop = async (c: number) => {
      const topic = `${cfg.topicPrefix}.l${li}.c${c}`;
      const offsets = (acked[topic] ??= []);
      let conn: Conn | undefined;
      let seq = 0;
      // Bounded: by time (the window) and by count (maxRequestsPerLevel across all connections).
      while (monoMs() < windowEnd && sent < cfg.maxRequestsPerLevel) {
        if (!conn || conn.dead) {
          try {
            conn = await Conn.open(cfg.port, cfg.timeoutMs);
          } catch (err) {
            bump(errors, (err as Error).message);
            await sleep(50);
            continue;
          }
        }
        const body = bodyOf(topic, seq++);
        const req = Buffer.concat([
          Buffer.from(
            `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n${auth}Content-Length: ${body.length}\r\n\r\n`,
            'latin1',
          ),
          body,
        ]);
        const t = monoMs();
        sent++;
        let a: Answer;
        try {
          a = await conn.request(req, cfg.timeoutMs);
        } catch (err) {
          bump(errors, (err as Error).message);
          continue;
        }
        const now = monoMs();
        bump(byStatus, String(a.status));
        let acked = 0;
        if (a.status === okStatus) {
          const offs = offsetsOf(a);
          if (offs) {
            for (const o of offs) offsets.push(o);
            acked = offs.length;
          } else ackWithoutOffset++;
        }
        if (t >= windowStart && now <= windowEnd) {
          completed++;
          messages += acked;
          latency.push(now - t);
        }
      }
      conn?.close();
    };
    await Promise.all(Array.from({ length: level.connections }, (_, c) => loop(c)));
    // A level cut short by maxRequestsPerLevel still sends its marks (the orchestrator waits for them).
    for (const t of markTimers) clearTimeout(t);
    mark('start');
    mark('end');
    const windowMs = Math.min(level.measureMs, Math.max(1, monoMs() - windowStart));
    levels.push({
      connections: level.connections,
      completed,
      windowMs,
      rps: (completed * 1000) / windowMs,
      latencyMs: latency.summary(),
      byStatus,
      errors,
      sent,
      messages,
      itemErrors,
      nonContiguous,
    });
  }
  await send({ type: 'result', result: { levels, acked, ackWithoutOffset } satisfies IngestLoadResult });
}

runWorker<IngestLoadConfig>(main, 10 * 60_000);
