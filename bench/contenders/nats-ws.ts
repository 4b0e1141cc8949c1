import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../lib/procs.ts';
import { waitForTcp } from './native.ts';
import type { Contender } from './types.ts';

/**
 * BENCH CONTENDER: a private nats-server with a WebSocket listener, both on free loopback ports (never
 * the shared service on 4222). The load generator speaks the core text protocol (CONNECT, SUB, PUB,
 * MSG, PING/PONG) over the lean WebSocket client; compression off.
 */

export const NATS_SERVER = '/usr/sbin/nats-server';

export const natsWs: Contender = {
  name: 'nats-ws',
  label: 'NATS (WebSocket)',
  description:
    'A private `nats-server` started by the bench with `websocket { no_tls: true, compression: false }` on a free loopback port; ' +
    'core NATS subjects, no JetStream, no auth. Subscribers and the publisher speak CONNECT/SUB/PUB/MSG over the lean WebSocket client.',
  async unavailable() {
    return existsSync(NATS_SERVER) ? null : `${NATS_SERVER} not found`;
  },
  async start({ children, dir }) {
    const [clientPort, wsPort] = [await freePort(), await freePort()];
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      [
        `listen: "127.0.0.1:${clientPort}"`,
        // Generous limits so that a burst is measured, not cut short as a slow consumer.
        'max_pending: 268435456',
        'write_deadline: "30s"',
        'websocket {',
        `  listen: "127.0.0.1:${wsPort}"`,
        '  no_tls: true',
        '  compression: false',
        '}',
        '',
      ].join('\n'),
    );
    const child = children.start({
      name: 'nats-server',
      command: NATS_SERVER,
      script: '',
      args: ['-c', conf],
      cpu: 0,
      logFile: join(dir, 'server.log'),
    });
    try {
      await waitForTcp(wsPort, 15_000, child);
    } catch (err) {
      await child.stop(2000);
      throw err;
    }
    const version = spawnSync(NATS_SERVER, ['--version'], { encoding: 'utf8', timeout: 5000 }).stdout?.trim() ?? '';
    return {
      pid: child.pid,
      target: { kind: 'nats', port: wsPort },
      running: () => child.running,
      stop: async () => void (await child.stop(5000)),
      notes: version ? [`${version}, pinned to CPU 0 (Go sizes GOMAXPROCS from the affinity mask)`] : [],
    };
  },
};
