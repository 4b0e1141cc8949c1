/**
 * The flood scenario's attacker (a worker process, pinned to CPU 1): WebSocket upgrade requests with
 * well-formed but unknown bearer tokens, on raw sockets from many loopback source addresses, at a
 * fixed offered rate (the i-th attempt is due at start + i / rate), at most `maxInFlight` at once.
 * Each attempt reads the status line and closes.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { bump, Samples } from '../../lib/stats.ts';
import { monoMs, sleep, sleepUntil } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import type { AttackConfig, AttackResult } from './protocol.ts';

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;

async function main(cfg: AttackConfig, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  // Fail early, before the run, if a source address cannot be used.
  await Promise.all(
    cfg.sources.map(
      (src) =>
        new Promise<void>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: cfg.port, localAddress: src });
          s.once('connect', () => (s.destroy(), resolve()));
          s.once('error', (err) => reject(new Error(`cannot connect from ${src}: ${err.message}`)));
        }),
    ),
  );
  await send({ type: 'ready' });
  const go = await next('go');
  const startMs = Number(BigInt(go.t0 as string)) / 1e6 + cfg.startMs;
  const endMs = startMs + cfg.durationMs;

  const scheduled = Math.floor((cfg.rate * cfg.durationMs) / 1000);
  const byStatus: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const answerMs = new Samples(scheduled + 16);
  const lagMs = new Samples(scheduled + 16);
  let timeouts = 0;
  let sent = 0;
  let inFlight = 0;
  let lastAnswer = startMs;
  const host = `127.0.0.1:${cfg.port}`;

  const attempt = (i: number) => {
    inFlight++;
    const began = monoMs();
    lagMs.push(began - (startMs + (i * 1000) / cfg.rate));
    const sock = connect({ host: '127.0.0.1', port: cfg.port, localAddress: cfg.sources[i % cfg.sources.length] });
    let head = '';
    let done = false;
    const finish = (outcome: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      inFlight--;
      sock.destroy();
      outcome();
    };
    const timer = setTimeout(() => finish(() => timeouts++), cfg.timeoutMs);
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('connect', () => {
      sock.write(
        `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${randomBytes(32).toString('base64url')}\r\n\r\n`,
      );
    });
    sock.on('data', (chunk: string) => {
      head += chunk;
      const eol = head.indexOf('\r\n');
      if (eol === -1 && head.length < 200) return;
      const m = STATUS_LINE.exec(head);
      finish(() => {
        const now = monoMs();
        lastAnswer = Math.max(lastAnswer, now);
        answerMs.push(now - began);
        bump(byStatus, m ? m[1]! : 'garbage');
      });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish(() => bump(errors, err.code ?? 'unknown')));
    sock.on('close', () => finish(() => bump(errors, 'closed_without_answer')));
  };

  await sleepUntil(startMs);
  while (monoMs() < endMs && sent < scheduled) {
    const due = Math.min(scheduled, Math.floor(((monoMs() - startMs) * cfg.rate) / 1000) + 1);
    while (sent < due && inFlight < cfg.maxInFlight) attempt(sent++);
    await sleep(1);
  }
  // Every attempt settles within timeoutMs; wait for them (bounded).
  const settleBy = monoMs() + cfg.timeoutMs + 1000;
  while (inFlight > 0 && monoMs() < settleBy) await sleep(10);

  const result: AttackResult = {
    scheduled,
    sent,
    notSent: scheduled - sent,
    windowMs: cfg.durationMs,
    byStatus,
    timeouts,
    errors,
    answerMs: answerMs.summary(),
    lagMs: lagMs.summary(),
    lastAnswerMs: Math.round(lastAnswer - startMs),
  };
  await send({ type: 'result', result });
}

runWorker<AttackConfig>(main, 10 * 60_000);
