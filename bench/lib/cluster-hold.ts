/**
 * The cluster scenario's load side (a worker process, pinned to CPU 1): holds Hubcast consumers on
 * several nodes (bench/lib/hubcast-consumer.ts, from several source addresses), each with its own
 * token and subscribed to one topic, and checks every delivery against the offset it expects: the
 * topic's offset in `subscribed` + 1, then each next one exactly once (a lower one is a duplicate, a
 * higher one a gap). Within a tracked window (the publisher's sequence numbers `from` ≤ seq < `to`)
 * it records, per node, each delivery's latency from the publisher's CLOCK_MONOTONIC stamp in the
 * payload and each message's count and last arrival, and per connection how many of the window's
 * messages arrived fresh and in order. Protocol: bench/lib/cluster-protocol.ts.
 */
import { findMark, nsAt, seqAt } from '../contenders/payload.ts';
import type { ClusterHoldCommand, ClusterHoldConfig, NodeConns, Opened, Progress, Report } from './cluster-protocol.ts';
import { Histogram } from './histogram.ts';
import { connectHubcast, failureReason } from './hubcast-consumer.ts';
import type { LeanWs } from './lean-ws.ts';
import { bump } from './stats.ts';
import { monoMs } from './time.ts';
import { runWorker, send } from './worker.ts';

const MAX_COMMANDS = 10_000;
const OFFSET = Buffer.from('"offset":');

interface Conn {
  node: number;
  /** The next offset this connection must receive; 0 until its `subscribed` is handled. */
  next: number;
  /** Offsets that arrived before that (a frame in the same chunk as `subscribed`): checked then. */
  early: number[] | undefined;
  /** The window's messages received fresh and in order. */
  inWindow: number;
  ws: LeanWs | undefined;
}

interface Window {
  from: number;
  to: number;
  latency: Histogram[];
  count: Uint32Array[];
  lastAt: Float64Array[];
}

/** The offset of a `{"type":"message","topic":…,"offset":N,…}` frame, or -1. */
function offsetOf(data: Buffer): number {
  const i = data.indexOf(OFFSET, 20);
  if (i === -1) return -1;
  let v = 0;
  for (let k = i + OFFSET.length; k < data.length; k++) {
    const d = data[k]! - 48;
    if (d < 0 || d > 9) return v;
    v = v * 10 + d;
  }
  return -1;
}

async function main(cfg: ClusterHoldConfig, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  const nodes = cfg.ports.length;
  const held = new Set<Conn>();
  const gaps = new Array<number>(nodes).fill(0);
  const duplicates = new Array<number>(nodes).fill(0);
  const closedByServer: Record<string, number> = {};
  let stray = 0;
  let closing = false;
  let win: Window | undefined;

  /** Offsets are the order: the publisher's requests may commit in another order than its sequence numbers. */
  const check = (c: Conn, offset: number): boolean => {
    if (offset === c.next) {
      c.next++;
      return true;
    }
    if (offset < c.next) duplicates[c.node]!++;
    else {
      gaps[c.node]! += offset - c.next;
      c.next = offset + 1;
    }
    return false;
  };

  const deliver = (c: Conn, data: Buffer) => {
    const now = monoMs();
    const m = findMark(data, 0, data.length);
    const offset = offsetOf(data);
    if (m === -1 || offset === -1) return void stray++;
    const seq = seqAt(data, m);
    let fresh = true;
    if (c.next === 0) (c.early ??= []).push(offset);
    else fresh = check(c, offset);
    const w = win;
    if (w && seq >= w.from && seq < w.to) {
      const k = seq - w.from;
      w.latency[c.node]!.add(now - nsAt(data, m) / 1e6);
      w.count[c.node]![k]!++;
      if (now > w.lastAt[c.node]![k]!) w.lastAt[c.node]![k] = now;
      if (fresh) c.inWindow++;
    }
  };

  const open = async (topic: string, tokens: string[], nodeOf: number[]): Promise<Opened> => {
    const started = monoMs();
    const deadline = started + cfg.setupTimeoutMs;
    const failures: Record<string, number> = {};
    const perNode = new Array<number>(nodes).fill(0);
    let nextI = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: Math.max(0, Math.min(cfg.connectConcurrency, tokens.length)) }, async () => {
        while (nextI < tokens.length) {
          const i = nextI++;
          if (monoMs() > deadline) {
            bump(failures, 'setup_deadline');
            continue;
          }
          const c: Conn = { node: nodeOf[i]!, next: 0, early: undefined, inWindow: 0, ws: undefined };
          try {
            const hc = await connectHubcast({
              port: cfg.ports[c.node]!,
              token: tokens[i]!,
              ...(cfg.sources.length ? { localAddress: cfg.sources[i % cfg.sources.length]! } : {}),
              timeoutMs: cfg.connectTimeoutMs,
              subscribe: { topic },
              onMessage: (data) => deliver(c, data),
              onClose: (code) => {
                if (closing) return;
                held.delete(c);
                bump(closedByServer, String(code));
              },
            });
            c.ws = hc.ws;
            c.next = (hc.subscribed?.offset ?? 0) + 1;
            for (const o of c.early ?? []) check(c, o);
            c.early = undefined;
            held.add(c);
            perNode[c.node]!++;
            ok++;
          } catch (err) {
            bump(failures, failureReason(err));
          }
        }
      }),
    );
    return { attempted: tokens.length, held: ok, perNode, failures, ms: Math.round(monoMs() - started) };
  };

  const report = (): Report => {
    const w = win;
    const len = w ? w.to - w.from : 0;
    const conns: NodeConns[] = Array.from({ length: nodes }, (_, i) => ({
      held: 0,
      complete: 0,
      gaps: gaps[i]!,
      duplicates: duplicates[i]!,
    }));
    for (const c of held) {
      conns[c.node]!.held++;
      if (c.inWindow === len) conns[c.node]!.complete++;
    }
    return {
      from: w?.from ?? 0,
      to: w?.to ?? 0,
      nodes: Array.from({ length: nodes }, (_, i) => ({
        latency: (w?.latency[i] ?? new Histogram()).toData(),
        count: Array.from(w?.count[i] ?? []),
        lastAt: Array.from(w?.lastAt[i] ?? []),
      })),
      conns,
      closedByServer,
      stray,
    };
  };

  await send({ type: 'ready' });
  for (let n = 0; n < MAX_COMMANDS; n++) {
    const { cmd } = (await next('cmd')) as unknown as { cmd: ClusterHoldCommand };
    switch (cmd.cmd) {
      case 'open':
        closing = false;
        await send({ type: 'opened', opened: await open(cmd.topic, cmd.tokens, cmd.nodes) });
        break;
      case 'track': {
        const len = Math.max(0, cmd.to - cmd.from);
        win = {
          from: cmd.from,
          to: cmd.to,
          latency: Array.from({ length: nodes }, () => new Histogram()),
          count: Array.from({ length: nodes }, () => new Uint32Array(len)),
          lastAt: Array.from({ length: nodes }, () => new Float64Array(len)),
        };
        for (const c of held) c.inWindow = 0;
        await send({ type: 'tracking' });
        break;
      }
      case 'progress': {
        const len = win ? win.to - win.from : 0;
        const progress: Progress = { held: new Array<number>(nodes).fill(0), done: new Array<number>(nodes).fill(0) };
        for (const c of held) {
          progress.held[c.node]!++;
          if (c.inWindow >= len) progress.done[c.node]!++;
        }
        await send({ type: 'progress', progress });
        break;
      }
      case 'report':
        await send({ type: 'report', report: report() });
        break;
      case 'close':
        closing = true;
        for (const c of held) c.ws?.destroy();
        held.clear();
        await send({ type: 'closed' });
        break;
      case 'exit':
        return;
    }
  }
}

runWorker<ClusterHoldConfig>(main, 30 * 60_000);
