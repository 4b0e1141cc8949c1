/**
 * The connect scenario's load side (a worker process, pinned to CPU 1): `concurrency` slots, each
 * in a loop — open a WebSocket with the lean client (bench/lib/lean-ws.ts; Hubcast: `Authorization:
 * Bearer <token>`, tokens round robin), count the 101, send a close frame and wait for the
 * connection to end, next. Handshakes/s = 101s completed in the measured window / the window.
 */
import { LeanWs } from '../../lib/lean-ws.ts';
import { failureReason } from '../../lib/hubcast-consumer.ts';
import { bump, Samples } from '../../lib/stats.ts';
import { monoMs, sleep } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import type { DialConfig, DialResult } from './protocol.ts';

async function main(cfg: DialConfig): Promise<void> {
  await send({ type: 'ready' });
  const started = monoMs();
  const windowStart = started + cfg.warmMs;
  const windowEnd = windowStart + cfg.measureMs;
  const marks = [
    setTimeout(() => void send({ type: 'window-start' }), cfg.warmMs),
    setTimeout(() => void send({ type: 'window-end' }), cfg.warmMs + cfg.measureMs),
  ];
  const latency = new Samples(65_536);
  const failures: Record<string, number> = {};
  let attempts = 0;
  let completed = 0;
  let closeTimeouts = 0;
  let k = 0;

  const slot = async () => {
    // Bounded by time (the window) and count (maxAttempts).
    while (monoMs() < windowEnd && attempts < cfg.maxAttempts) {
      const i = k++;
      attempts++;
      const t = monoMs();
      let ended!: () => void;
      const closed = new Promise<void>((resolve) => (ended = resolve));
      let ws: LeanWs;
      try {
        ws = await LeanWs.connect({
          host: '127.0.0.1',
          port: cfg.port,
          path: cfg.path,
          ...(cfg.tokens.length ? { headers: { authorization: `Bearer ${cfg.tokens[i % cfg.tokens.length]}` } } : {}),
          localAddress: cfg.sources[i % cfg.sources.length]!,
          timeoutMs: cfg.timeoutMs,
          onMessage: () => undefined,
          onClose: () => ended(),
        });
      } catch (err) {
        bump(failures, failureReason(err));
        await sleep(10);
        continue;
      }
      const now = monoMs();
      if (t >= windowStart && now <= windowEnd) {
        completed++;
        latency.push(now - t);
      }
      ws.close(1000);
      // lean-ws destroys the socket 2 s after its close frame if the server has not ended it.
      const inTime = await Promise.race([closed.then(() => true), sleep(3000).then(() => false)]);
      if (!inTime) {
        closeTimeouts++;
        ws.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, () => slot()));
  for (const m of marks) clearTimeout(m);
  const windowMs = Math.min(cfg.measureMs, Math.max(1, monoMs() - windowStart));
  if (monoMs() < windowEnd) {
    // Cut short by maxAttempts: still send the marks the orchestrator waits for.
    await send({ type: 'window-start' });
    await send({ type: 'window-end' });
  }
  const result: DialResult = {
    attempts,
    completed,
    windowMs,
    perS: (completed * 1000) / windowMs,
    handshakeMs: latency.summary(),
    failures,
    closeTimeouts,
  };
  await send({ type: 'result', result });
}

runWorker<DialConfig>(main, 10 * 60_000);
