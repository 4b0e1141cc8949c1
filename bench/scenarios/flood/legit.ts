/**
 * The flood scenario's legitimate side (a worker process, pinned to CPU 1): N consumers registered
 * once each, subscribed to one topic, one of them closing and reconnecting with `since` every
 * ~200 ms; a publisher POSTing to /entity on a fixed schedule with its CLOCK_MONOTONIC time in each
 * payload. Counts failed connects, lost and duplicated offsets, delivery latency by phase.
 */
import { Agent, request } from 'node:http';
import { WebSocket, type RawData } from 'ws';
import { bump, Samples, type Summary } from '../../lib/stats.ts';
import { monoMs, sleep, sleepUntil } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import { bounds, phaseAt, type LegitConfig, type LegitResult, type PhaseName } from './protocol.ts';

interface Consumer {
  idx: number;
  token: string;
  ws: WebSocket | undefined;
  state: 'idle' | 'connecting' | 'open' | 'closing';
  /** Highest offset received. */
  last: number;
  epoch: string | undefined;
  subscribedOnce: boolean;
  /** Offsets up to this one, after a resubscribe, are replays. */
  replayUntil: number;
  /** A reconnect (or recovery) is running for it. */
  busy: boolean;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function httpJson(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          clearTimeout(timer);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** Registers one consumer (POST /consumers); retries 503/429 a bounded number of times. */
async function register(cfg: LegitConfig): Promise<string> {
  const body = JSON.stringify({ client_id: cfg.clientId, client_secret: cfg.clientSecret });
  for (let attempt = 0; attempt < 50; attempt++) {
    const res = await httpJson(cfg.port, '/consumers', {}, body, 10_000);
    if (res.status === 201) return res.json.token as string;
    if (res.status !== 503 && res.status !== 429) throw new Error(`POST /consumers answered ${res.status}: ${JSON.stringify(res.json)}`);
    await sleep(100);
  }
  throw new Error('POST /consumers kept answering 503/429');
}

async function main(cfg: LegitConfig, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  const b = bounds(cfg.phases);
  const url = `ws://127.0.0.1:${cfg.port}/ws`;

  // ---- registration: each consumer once, at most 4 at a time (the server's registerConcurrency) ----
  const regStart = monoMs();
  const tokens: string[] = new Array(cfg.consumers);
  let nextReg = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (nextReg < cfg.consumers) {
        const i = nextReg++;
        tokens[i] = await register(cfg);
      }
    }),
  );
  const registerMs = Math.round(monoMs() - regStart);

  // ---- measurement state ----
  let t0Ns = 0n;
  let t0Ms = Number.NaN;
  const phaseOfMs = (atMs: number): PhaseName => (Number.isNaN(t0Ms) ? 'warmup' : phaseAt(atMs - t0Ms, cfg.phases));
  const perPhase = () => ({}) as Partial<Record<PhaseName, Samples>>;
  const delivery = perPhase();
  const liveDelivery = perPhase();
  const connectTime = perPhase();
  const ackTime = perPhase();
  const add = (m: Partial<Record<PhaseName, Samples>>, phase: PhaseName, v: number) => (m[phase] ??= new Samples(4096)).push(v);
  const connects = {
    attempts: 0,
    ok: 0,
    failures: {} as Record<string, number>,
    failuresByPhase: {} as Partial<Record<PhaseName, number>>,
    reconnects: 0,
    reconnectsSkipped: 0,
    unexpectedCloses: {} as Record<string, number>,
  };
  const msgs = { delivered: 0, gaps: 0, duplicated: 0, unrecovered: 0 };
  /** Messages accepted (202), and first deliveries, by phase of the publish; failed connects by phase. */
  const acceptedIn: Partial<Record<PhaseName, number>> = {};
  const deliveredIn: Partial<Record<PhaseName, number>> = {};
  const count = (m: Partial<Record<PhaseName, number>>, phase: PhaseName) => (m[phase] = (m[phase] ?? 0) + 1);
  let hardDeadline = monoMs() + 120_000;

  const consumers: Consumer[] = tokens.map((token, idx) => ({
    idx,
    token,
    ws: undefined,
    state: 'idle',
    last: 0,
    epoch: undefined,
    subscribedOnce: false,
    replayUntil: 0,
    busy: false,
  }));

  const onMessage = (c: Consumer, m: any) => {
    const o = m.offset as number;
    msgs.delivered++;
    if (o <= c.last) {
      msgs.duplicated++;
      return;
    }
    if (o > c.last + 1) msgs.gaps += o - c.last - 1;
    c.last = o;
    const stamp = m.data?.t;
    if (typeof stamp !== 'string' || t0Ns === 0n) return;
    const sentNs = BigInt(stamp);
    const latencyMs = Number(process.hrtime.bigint() - sentNs) / 1e6;
    const phase = phaseAt(Number(sentNs - t0Ns) / 1e6, cfg.phases);
    count(deliveredIn, phase);
    add(delivery, phase, latencyMs);
    if (o > c.replayUntil) add(liveDelivery, phase, latencyMs);
  };

  const recover = (c: Consumer) => {
    if (c.busy) return;
    c.busy = true;
    void ensureConnected(c).finally(() => (c.busy = false));
  };

  /** One attempt: handshake, subscribe (with `since` after the first time), `subscribed`. Null on success, else why not. */
  const connectOnce = (c: Consumer): Promise<string | null> =>
    new Promise((resolve) => {
      const started = monoMs();
      let settled = false;
      const ws = new WebSocket(url, {
        headers: { authorization: `Bearer ${c.token}` },
        perMessageDeflate: false,
        // Our own timer (connectTimeoutMs) decides; ws's handshake timeout is only a backstop.
        handshakeTimeout: cfg.connectTimeoutMs + 1000,
      });
      c.ws = ws;
      c.state = 'connecting';
      const finish = (reason: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (reason === null) {
          c.state = 'open';
          add(connectTime, phaseOfMs(started), monoMs() - started);
        } else {
          if (c.ws === ws) {
            c.ws = undefined;
            c.state = 'idle';
          }
          try {
            ws.terminate();
          } catch {
            // already gone
          }
        }
        resolve(reason);
      };
      const timer = setTimeout(() => finish('timeout'), cfg.connectTimeoutMs);
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        finish(`http_${res.statusCode}`);
      });
      ws.on('error', (err: NodeJS.ErrnoException) => finish(`error_${err.code ?? 'ws'}`));
      ws.on('open', () => {
        const since = c.subscribedOnce ? { since: { offset: c.last, ...(c.epoch ? { epoch: c.epoch } : {}) } } : {};
        ws.send(JSON.stringify({ type: 'subscribe', topic: cfg.topic, ...since, id: 1 }));
      });
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) return;
        let m: any;
        try {
          m = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (m.type === 'message') return onMessage(c, m);
        if (m.type === 'subscribed') {
          if (c.subscribedOnce && m.recovered === false) msgs.unrecovered++;
          if (!c.subscribedOnce) c.last = m.offset as number;
          c.subscribedOnce = true;
          c.epoch = m.epoch as string;
          c.replayUntil = m.offset as number;
          return finish(null);
        }
        if (m.type === 'error' && !settled) finish(`subscribe_${String(m.code)}`);
      });
      ws.on('close', (code: number) => {
        if (!settled) return finish(`closed_${code}`);
        if (c.ws !== ws) return;
        c.ws = undefined;
        const asked = c.state === 'closing';
        c.state = 'idle';
        if (!asked) {
          bump(connects.unexpectedCloses, String(code));
          recover(c);
        }
      });
    });

  /** Attempts until connected or the hard deadline; every failed attempt is counted. */
  const ensureConnected = async (c: Consumer): Promise<boolean> => {
    while (monoMs() < hardDeadline) {
      const phase = phaseOfMs(monoMs());
      connects.attempts++;
      const reason = await connectOnce(c);
      if (reason === null) {
        connects.ok++;
        return true;
      }
      bump(connects.failures, reason);
      connects.failuresByPhase[phase] = (connects.failuresByPhase[phase] ?? 0) + 1;
      await sleep(100);
    }
    return false;
  };

  /** Closes with 1000 and waits for the close (bounded, then terminates). */
  const closeConsumer = async (c: Consumer): Promise<void> => {
    const ws = c.ws;
    if (!ws) return;
    c.state = 'closing';
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000, 'bench reconnect');
    const inTime = await Promise.race([closed.then(() => true), sleep(5000).then(() => false)]);
    if (!inTime) ws.terminate();
    if (c.ws === ws) {
      c.ws = undefined;
      c.state = 'idle';
    }
  };

  // ---- initial connections ----
  const connected = await Promise.all(consumers.map((c) => ensureConnected(c)));
  if (connected.some((ok) => !ok)) throw new Error('not every consumer could connect before the run');
  Object.assign(connects, { attempts: 0, ok: 0, failures: {}, failuresByPhase: {} });
  for (const m of [connectTime]) for (const k of Object.keys(m)) delete m[k as PhaseName];
  await send({ type: 'ready', registerMs });

  // ---- the run ----
  const go = await next('go');
  t0Ns = BigInt(go.t0 as string);
  t0Ms = Number(t0Ns) / 1e6;
  const endAbs = t0Ms + b.end;
  hardDeadline = endAbs + cfg.drainMs;
  await sleepUntil(t0Ms);

  let k = 0;
  const reconnectTimer = setInterval(() => {
    if (monoMs() >= endAbs) return;
    const c = consumers[k++ % consumers.length]!;
    if (c.busy) {
      connects.reconnectsSkipped++;
      return;
    }
    c.busy = true;
    connects.reconnects++;
    void (async () => {
      await closeConsumer(c);
      await ensureConnected(c);
    })().finally(() => (c.busy = false));
  }, cfg.reconnectEveryMs);

  const publish = { scheduled: Math.floor((cfg.publishRate * b.end) / 1000), sent: 0, accepted: 0, failed: {} as Record<string, number> };
  let inFlight = 0;
  let finalOffset = 0;
  const publishOne = (i: number) => {
    inFlight++;
    const stamp = process.hrtime.bigint();
    const startedMs = Number(stamp) / 1e6;
    const body = JSON.stringify({ topic: cfg.topic, data: { t: stamp.toString(), i } });
    httpJson(cfg.port, '/entity', { authorization: `Bearer ${cfg.ingestKey}` }, body, 10_000).then(
      (res) => {
        inFlight--;
        if (res.status === 202) {
          publish.accepted++;
          finalOffset = Math.max(finalOffset, res.json.offset as number);
          add(ackTime, phaseOfMs(startedMs), monoMs() - startedMs);
          count(acceptedIn, phaseOfMs(startedMs));
        } else bump(publish.failed, `http_${res.status}`);
      },
      (err: NodeJS.ErrnoException) => {
        inFlight--;
        bump(publish.failed, err.code === 'TIMEOUT' ? 'timeout' : `error_${err.code ?? 'unknown'}`);
      },
    );
  };
  // Open loop: the i-th message is due at t0 + i / rate; late ones go as soon as the in-flight cap
  // allows, up to 2 s after the last phase.
  while (publish.sent < publish.scheduled && monoMs() < endAbs + 2000) {
    const due = Math.min(publish.scheduled, Math.floor(((monoMs() - t0Ms) * cfg.publishRate) / 1000) + 1);
    while (publish.sent < due && inFlight < cfg.maxPublishInFlight) publishOne(publish.sent++);
    await sleep(1);
  }
  clearInterval(reconnectTimer);

  // ---- drain: every accepted message must reach every consumer ----
  const drainStart = monoMs();
  while (inFlight > 0 && monoMs() < drainStart + 10_000) await sleep(10);
  const caughtUp = () => consumers.every((c) => c.state === 'open' && c.last >= finalOffset);
  while (!caughtUp() && monoMs() < hardDeadline) {
    for (const c of consumers) if (c.state === 'idle' && !c.busy) recover(c);
    await sleep(20);
  }
  const drainMs = Math.round(monoMs() - drainStart);
  const tail = consumers.reduce((n, c) => n + Math.max(0, finalOffset - c.last), 0);
  const done = caughtUp();
  hardDeadline = 0; // stops recoveries still looping
  await Promise.all(consumers.map((c) => (c.state === 'open' ? closeConsumer(c) : undefined)));
  for (const c of consumers) c.ws?.terminate();

  const summaries = (m: Partial<Record<PhaseName, Samples>>, missing: (p: PhaseName) => number = () => 0) =>
    Object.fromEntries(Object.entries(m).map(([p, s]) => [p, s!.summary(missing(p as PhaseName))])) as Partial<Record<PhaseName, Summary>>;
  // Every accepted message is due at every consumer: those that never arrived count as infinitely late.
  const undelivered = (p: PhaseName) => Math.max(0, (acceptedIn[p] ?? 0) * consumers.length - (deliveredIn[p] ?? 0));
  for (const p of Object.keys(acceptedIn) as PhaseName[]) delivery[p] ??= new Samples(1);
  for (const p of Object.keys(connects.failuresByPhase) as PhaseName[]) connectTime[p] ??= new Samples(1);
  const result: LegitResult = {
    consumers: consumers.length,
    registerMs,
    publish: { ...publish, notSent: publish.scheduled - publish.sent, finalOffset, ackMs: summaries(ackTime) },
    deliveryMs: summaries(delivery, undelivered),
    liveDeliveryMs: summaries(liveDelivery),
    connects: { ...connects, timeMs: summaries(connectTime, (p) => connects.failuresByPhase[p] ?? 0) },
    messages: { ...msgs, lost: msgs.gaps + tail, tail, caughtUp: done, drainMs },
  };
  await send({ type: 'result', result });
}

runWorker<LegitConfig>(main, 10 * 60_000);
