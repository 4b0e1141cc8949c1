import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../lib/procs.ts';
import { sleep } from '../lib/time.ts';
import { tcpOpen, waitForTcp } from './native.ts';
import type { Contender, StartOptions, Started } from './types.ts';

/**
 * BENCH CONTENDER: a private mosquitto with a WebSocket listener on a free loopback port (never the
 * shared service on 1883). The load generator speaks MQTT 3.1.1 (CONNECT, SUBSCRIBE, PUBLISH QoS 0)
 * over the lean WebSocket client (subprotocol `mqtt`).
 *
 * Debian's mosquitto may be built without libwebsockets: a `protocol websockets` listener then fails
 * with "Unable to start any listening sockets". `unavailable()` finds that out by starting one, and the
 * contender is skipped. `mosquitto-tcp` (opt-in: `--contenders=…,mosquitto-tcp`) runs the same broker
 * over plain TCP instead, for reference only: no WebSocket framing on either side, so it is not the
 * same workload.
 */

export const MOSQUITTO = '/usr/sbin/mosquitto';

function config(port: number, protocol: 'websockets' | 'mqtt'): string {
  return [
    `listener ${port} 127.0.0.1`,
    `protocol ${protocol}`,
    'allow_anonymous true',
    'persistence false',
    // QoS 0 only; generous queues so that a burst is measured rather than dropped.
    'max_queued_messages 1000000',
    'max_inflight_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    '',
  ].join('\n');
}

let wsProbe: Promise<string | null> | undefined;

/** Starts mosquitto with a websockets listener for a moment: null when it listens, else why not. */
function probeWebsockets(): Promise<string | null> {
  return (wsProbe ??= (async () => {
    if (!existsSync(MOSQUITTO)) return `${MOSQUITTO} not found`;
    const dir = mkdtempSync(join(tmpdir(), 'hubcast-bench-mosquitto-probe-'));
    const port = await freePort();
    writeFileSync(join(dir, 'm.conf'), config(port, 'websockets'));
    const proc = spawn(MOSQUITTO, ['-c', join(dir, 'm.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (c: Buffer) => void (err = (err + c.toString()).slice(-10_000)));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    try {
      for (let i = 0; i < 40 && proc.exitCode === null; i++) {
        if (await tcpOpen(port, 200)) return null;
        await sleep(50);
      }
      const why = /Error: [^\n]+/.exec(err)?.[0]?.trim() ?? 'it did not listen within 2 s';
      return (
        `${MOSQUITTO} cannot serve WebSocket here: with \`protocol websockets\` it says "${why}" ` +
        '(this build is not linked with libwebsockets). Skipped; `--contenders=…,mosquitto-tcp` runs it over plain TCP for reference.'
      );
    } finally {
      proc.kill('SIGKILL');
      await Promise.race([exited, sleep(2000)]);
      rmSync(dir, { recursive: true, force: true });
    }
  })());
}

async function start(protocol: 'websockets' | 'mqtt', { children, dir }: StartOptions): Promise<Started> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, config(port, protocol));
  const child = children.start({
    name: 'mosquitto',
    command: MOSQUITTO,
    script: '',
    args: ['-c', conf],
    cpu: 0,
    logFile: join(dir, 'server.log'),
  });
  try {
    await waitForTcp(port, 15_000, child);
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
  return {
    pid: child.pid,
    target: { kind: 'mqtt', port, transport: protocol === 'websockets' ? 'ws' : 'tcp' },
    running: () => child.running,
    stop: async () => void (await child.stop(5000)),
    notes: [],
  };
}

export const mosquittoWs: Contender = {
  name: 'mosquitto-ws',
  label: 'Mosquitto (WebSocket)',
  description:
    'A private `mosquitto` started by the bench with a `protocol websockets` listener on a free loopback port, anonymous, no persistence; ' +
    'MQTT 3.1.1 QoS 0 over the lean WebSocket client.',
  unavailable: probeWebsockets,
  start: (o) => start('websockets', o),
};

export const mosquittoTcp: Contender = {
  name: 'mosquitto-tcp',
  label: 'Mosquitto (TCP, reference)',
  description:
    'For reference only (opt-in): the same private `mosquitto` over plain TCP MQTT 3.1.1 QoS 0 — no WebSocket framing on either side, ' +
    'so not the same workload as the others.',
  async unavailable() {
    return existsSync(MOSQUITTO) ? null : `${MOSQUITTO} not found`;
  },
  start: (o) => start('mqtt', o),
};
