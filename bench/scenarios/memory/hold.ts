/**
 * The memory scenario's load side (a worker process, pinned to CPU 1): opens connections to one
 * contender, subscribes each to one topic and holds them idle, on command. Every connection goes
 * through the comparison adapters of bench/contenders/protocol.ts (the one lean WebSocket client),
 * or — Hubcast from several source addresses, for the scale run — bench/lib/hubcast-consumer.ts.
 */
import { adapterFor, type Sink, type SubscriberConn } from '../../contenders/protocol.ts';
import { connectHubcast, failureReason } from '../../lib/hubcast-consumer.ts';
import { bump } from '../../lib/stats.ts';
import { monoMs } from '../../lib/time.ts';
import { runWorker, send } from '../../lib/worker.ts';
import type { HoldCommand, HoldConfig, HoldStatus, Opened } from './protocol.ts';

const MAX_COMMANDS = 1000;

async function main(cfg: HoldConfig, next: (type: string) => Promise<{ type: string; [k: string]: unknown }>): Promise<void> {
  const adapter = adapterFor(cfg.target);
  const topic = adapter.topicName(cfg.topic);
  const held = new Map<number, SubscriberConn>();
  const closedByServer: Record<string, number> = {};
  let deliveries = 0;
  let closing = false;

  const sink: Sink = {
    deliver: () => void deliveries++,
    closed(sub, code) {
      if (closing) return;
      held.delete(sub);
      bump(closedByServer, String(code));
    },
  };

  const openOne = async (i: number): Promise<SubscriberConn> => {
    const t = cfg.target;
    if (cfg.sources?.length && t.kind === 'hubcast') {
      const c = await connectHubcast({
        port: t.port,
        token: t.tokens[i]!,
        localAddress: cfg.sources[i % cfg.sources.length]!,
        timeoutMs: cfg.connectTimeoutMs,
        subscribe: { topic },
        onMessage: () => void deliveries++,
        onClose: (code) => sink.closed(i, code),
      });
      return c.ws;
    }
    return adapter.subscribe(i, [topic], sink, cfg.connectTimeoutMs);
  };

  const open = async (from: number, to: number): Promise<Opened> => {
    const started = monoMs();
    const deadline = started + cfg.setupTimeoutMs;
    const failures: Record<string, number> = {};
    let nextI = from;
    let ok = 0;
    await Promise.all(
      Array.from({ length: Math.max(0, Math.min(cfg.connectConcurrency, to - from)) }, async () => {
        while (nextI < to) {
          const i = nextI++;
          if (monoMs() > deadline) {
            bump(failures, 'setup_deadline');
            continue;
          }
          try {
            held.set(i, await openOne(i));
            ok++;
          } catch (err) {
            bump(failures, failureReason(err));
          }
        }
      }),
    );
    return { attempted: to - from, held: ok, failures, ms: Math.round(monoMs() - started) };
  };

  await send({ type: 'ready' });
  for (let n = 0; n < MAX_COMMANDS; n++) {
    const { cmd } = (await next('cmd')) as unknown as { cmd: HoldCommand };
    switch (cmd.cmd) {
      case 'open':
        closing = false;
        await send({ type: 'opened', opened: await open(cmd.from, cmd.to) });
        break;
      case 'status':
        await send({ type: 'status', status: { alive: held.size, closedByServer, deliveries } satisfies HoldStatus });
        break;
      case 'close':
        closing = true;
        for (const c of held.values()) c.destroy();
        held.clear();
        await send({ type: 'closed' });
        break;
      case 'exit':
        return;
    }
  }
}

runWorker<HoldConfig>(main, 15 * 60_000);
