/**
 * The reconnect scenario's load side (a worker process, pinned to CPU 1): N Hubcast consumers on the
 * lean WebSocket client (bench/lib/hubcast-consumer.ts), each with its own token, subscribed to one
 * topic. Publishes through POST /entity with the ingest key. Every consumer checks its offsets: each
 * message must be exactly the one after the last (a jump is a gap, an old one a duplicate).
 */
import { connectHubcast, failureReason } from '../../lib/hubcast-consumer.ts';
import type { LeanWs } from '../../lib/lean-ws.ts';
import { bump, Samples } from '../../lib/stats.ts';
import { monoMs, sleep } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import type { StormConfig, StormResult } from './protocol.ts';

interface Consumer {
  i: number;
  ws: LeanWs | undefined;
  last: number;
  epoch: string | undefined;
  /** Closes we asked for are not counted. */
  closing: boolean;
  attempts: number;
  connected: boolean;
  /** A reconnect loop runs for it (never two at once: one live connection per token). */
  dialling: boolean;
  /** Monotonic ms of the last in-order message. */
  lastAt: number;
  subscribedAt: number;
}

const OFFSET_KEY = Buffer.from('"offset":');

/** The `"offset":N` of a message frame, without parsing the JSON; -1 when absent. */
function offsetOf(data: Buffer): number {
  const k = data.indexOf(OFFSET_KEY);
  if (k === -1) return -1;
  let n = 0;
  let i = k + OFFSET_KEY.length;
  for (; i < data.length; i++) {
    const c = data[i]!;
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
  }
  return i === k + OFFSET_KEY.length ? -1 : n;
}

async function main(cfg: StormConfig, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  const pad = 'x'.repeat(Math.max(0, cfg.dataBytes - 30));
  let seq = 0;
  const publish = async (): Promise<number | null> => {
    try {
      const res = await fetch(`http://127.0.0.1:${cfg.port}/entity`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${cfg.ingestKey}` },
        body: JSON.stringify({ topic: cfg.topic, data: { seq: seq++, pad } }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json()) as { offset?: number };
      return res.status === 202 && typeof body.offset === 'number' ? body.offset : null;
    } catch {
      return null;
    }
  };

  const consumers: Consumer[] = cfg.tokens.map((_, i) => ({
    i,
    ws: undefined,
    last: 0,
    epoch: undefined,
    closing: false,
    attempts: 0,
    connected: false,
    dialling: false,
    lastAt: 0,
    subscribedAt: 0,
  }));
  let counting = false;
  let received = 0;
  let gaps = 0;
  let duplicates = 0;
  let unrecovered = 0;
  const closedByServer: Record<string, number> = {};

  const onMessage = (c: Consumer, data: Buffer) => {
    const o = offsetOf(data);
    if (o === -1) return;
    if (counting) received++;
    if (o <= c.last) {
      duplicates++;
      return;
    }
    if (o > c.last + 1) gaps += o - c.last - 1;
    c.last = o;
    c.lastAt = monoMs();
  };

  /** One attempt: connect with the token, subscribe (with `since` once it has an offset). */
  const connectOnce = async (c: Consumer, withSince: boolean): Promise<void> => {
    c.attempts++;
    c.closing = false;
    const { ws, subscribed } = await connectHubcast({
      port: cfg.port,
      token: cfg.tokens[c.i]!,
      timeoutMs: cfg.connectTimeoutMs,
      subscribe: { topic: cfg.topic, ...(withSince ? { since: { offset: c.last, ...(c.epoch ? { epoch: c.epoch } : {}) } } : {}) },
      onMessage: (data) => onMessage(c, data),
      onClose: (code) => {
        c.connected = false;
        c.ws = undefined;
        if (!c.closing) bump(closedByServer, String(code));
      },
    });
    c.ws = ws;
    c.connected = true;
    c.subscribedAt = monoMs();
    if (!withSince) c.last = subscribed!.offset;
    else if (subscribed?.recovered === false) unrecovered++;
    c.epoch = subscribed!.epoch;
  };

  // ---- everyone connects and subscribes ----
  const setupStart = monoMs();
  const setupFailures: Record<string, number> = {};
  let nextI = 0;
  await Promise.all(
    Array.from({ length: Math.min(cfg.connectConcurrency, consumers.length) }, async () => {
      while (nextI < consumers.length) {
        const c = consumers[nextI++]!;
        try {
          await connectOnce(c, false);
        } catch (err) {
          bump(setupFailures, failureReason(err));
        }
      }
    }),
  );
  const setupMs = Math.round(monoMs() - setupStart);
  if (consumers.some((c) => !c.connected)) throw new Error(`not every consumer could connect: ${JSON.stringify(setupFailures)}`);

  // ---- a few live messages: every consumer must get them ----
  let warmLast = 0;
  for (let k = 0; k < cfg.warmMessages; k++) warmLast = Math.max(warmLast, (await publish()) ?? 0);
  const warmDeadline = monoMs() + 15_000;
  while (consumers.some((c) => c.last < warmLast) && monoMs() < warmDeadline) await sleep(20);
  const warmDelivered = consumers.filter((c) => c.last >= warmLast).length;
  await send({ type: 'ready', setupMs, warmDelivered });

  // ---- everyone closes (1000) ----
  await next('close');
  const closes = consumers.map(
    (c) =>
      new Promise<void>((resolve) => {
        const ws = c.ws;
        if (!ws || ws.closed) return resolve();
        c.closing = true;
        ws.socket.once('close', () => resolve());
        ws.close(1000);
      }),
  );
  await Promise.race([Promise.all(closes), sleep(15_000)]);
  for (const c of consumers) c.ws?.destroy();
  const sinceOffset = Math.min(...consumers.map((c) => c.last));
  await send({ type: 'closed', sinceOffset });

  // ---- the backlog, published while nobody is connected ----
  await next('publish');
  const pubStart = monoMs();
  let finalOffset = 0;
  for (let k = 0; k < cfg.backlog; k++) {
    const o = await publish();
    if (o === null) throw new Error('a backlog publish was not accepted');
    finalOffset = Math.max(finalOffset, o);
  }
  const backlogPublishMs = Math.round(monoMs() - pubStart);
  await send({ type: 'published', finalOffset });

  // ---- the storm: everyone at once, with since ----
  await next('storm');
  counting = true;
  const t0 = monoMs();
  const deadline = t0 + cfg.stormMs;
  const failures: Record<string, number> = {};
  const subscribedMs = new Samples(consumers.length + 16);
  const reconnect = async (c: Consumer) => {
    if (c.dialling) return;
    c.dialling = true;
    try {
      while (!c.connected && c.attempts < cfg.maxAttempts && monoMs() < deadline) {
        try {
          await connectOnce(c, true);
          subscribedMs.push(monoMs() - t0);
          return;
        } catch (err) {
          bump(failures, failureReason(err));
          await sleep(cfg.retryMs * (0.5 + Math.random()));
        }
      }
    } finally {
      c.dialling = false;
    }
  };
  for (const c of consumers) c.attempts = 0;
  const dialling = Promise.all(consumers.map((c) => reconnect(c)));

  // Live messages during the storm.
  let liveAccepted = 0;
  let liveFailed = 0;
  for (let k = 0; k < cfg.live && monoMs() < deadline; k++) {
    const o = await publish();
    if (o === null) liveFailed++;
    else {
      liveAccepted++;
      finalOffset = Math.max(finalOffset, o);
    }
    await sleep(cfg.liveEveryMs);
  }
  // Until everyone holds the final offset; consumers the server dropped are reconnected (bounded).
  while (monoMs() < deadline && consumers.some((c) => c.last < finalOffset)) {
    for (const c of consumers) if (!c.connected && c.last < finalOffset && c.attempts < cfg.maxAttempts) void reconnect(c);
    await sleep(20);
  }
  await Promise.race([dialling, sleep(1000)]);
  const behind = consumers.filter((c) => c.last < finalOffset).length;
  const caughtEach = new Samples(consumers.length + 16);
  for (const c of consumers) if (c.last >= finalOffset) caughtEach.push(c.lastAt - t0);
  const allSubscribed = consumers.every((c) => c.subscribedAt >= t0);
  const result: StormResult = {
    consumers: consumers.length,
    setup: { ms: setupMs, failures: setupFailures },
    warmDelivered,
    sinceOffset,
    finalOffset,
    backlogPublishMs,
    storm: {
      caughtUpMs: behind === 0 ? Math.max(...consumers.map((c) => c.lastAt - t0)) : null,
      allSubscribedMs: allSubscribed ? Math.max(...consumers.map((c) => c.subscribedAt - t0)) : null,
      subscribedMs: subscribedMs.summary(consumers.length - subscribedMs.length),
      caughtUpEachMs: caughtEach.summary(behind),
      received,
      behind,
      gaps,
      duplicates,
      unrecovered,
      failures,
      neverConnected: consumers.filter((c) => c.subscribedAt < t0).length,
      closedByServer,
      liveAccepted,
      liveFailed,
    },
  };
  for (const c of consumers) {
    c.closing = true;
    c.ws?.destroy();
  }
  await send({ type: 'result', result });
}

runWorker<StormConfig>(main, 10 * 60_000);
