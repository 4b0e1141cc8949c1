/**
 * The cluster scenario's load side (a worker process, pinned to CPU 1): holds Hubcast consumers on
 * several nodes (bench/lib/hubcast-consumer.ts, from several source addresses), each with its own
 * token and subscribed to one topic, and checks every delivery against the sequence it expects
 * (exactly once, in order). Within a tracked window it records, per node, each delivery's latency
 * from the publisher's CLOCK_MONOTONIC stamp in the payload, and each message's count and last
 * arrival. Protocol: bench/lib/cluster-protocol.ts.
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

interface Conn {
  node: number;
  /** The next sequence this connection must receive. */
  next: number;
  ws: LeanWs | undefined;
}

interface Window {
  from: number;
  to: number;
  latency: Histogram[];
  count: Uint32Array[];
  lastAt: Float64Array[];
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

  const deliver = (c: Conn, data: Buffer) => {
    const now = monoMs();
    const m = findMark(data, 0, data.length);
    if (m === -1) return void stray++;
    const seq = seqAt(data, m);
    if (seq === c.next) c.next++;
    else if (seq < c.next) duplicates[c.node]!++;
    else {
      gaps[c.node]! += seq - c.next;
      c.next = seq + 1;
    }
    const w = win;
    if (w && seq >= w.from && seq < w.to) {
      const k = seq - w.from;
      w.latency[c.node]!.add(now - nsAt(data, m) / 1e6);
      w.count[c.node]![k]!++;
      if (now > w.lastAt[c.node]![k]!) w.lastAt[c.node]![k] = now;
    }
  };

  const open = async (topic: string, tokens: string[], nodeOf: number[], firstSeq: number): Promise<Opened> => {
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
          const c: Conn = { node: nodeOf[i]!, next: firstSeq, ws: undefined };
          try {
            const hc = await connectHubcast({
              port: cfg.ports[c.node]!,
              token: tokens[i]!,
              localAddress: cfg.sources[i % cfg.sources.length]!,
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
    const w = win ?? { from: 0, to: 0, latency: [], count: [], lastAt: [] };
    const conns: NodeConns[] = Array.from({ length: nodes }, (_, i) => ({
      held: 0,
      complete: 0,
      gaps: gaps[i]!,
      duplicates: duplicates[i]!,
    }));
    for (const c of held) {
      conns[c.node]!.held++;
      if (c.next === w.to) conns[c.node]!.complete++;
    }
    return {
      from: w.from,
      to: w.to,
      nodes: Array.from({ length: nodes }, (_, i) => ({
        latency: (w.latency[i] ?? new Histogram()).toData(),
        count: Array.from(w.count[i] ?? []),
        lastAt: Array.from(w.lastAt[i] ?? []),
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
        await send({ type: 'opened', opened: await open(cmd.topic, cmd.tokens, cmd.nodes, cmd.firstSeq) });
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
        await send({ type: 'tracking' });
        break;
      }
      case 'progress': {
        const progress: Progress = { held: new Array<number>(nodes).fill(0), done: new Array<number>(nodes).fill(0) };
        for (const c of held) {
          progress.held[c.node]!++;
          if (c.next >= cmd.until) progress.done[c.node]!++;
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
