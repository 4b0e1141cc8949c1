import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { killChildren, startCommandLine, type Child } from '../helpers/child.ts';
import { cli, eventually, tempDir } from '../helpers/server.ts';
import { Checker, recordStates } from './helpers/checker.ts';
import { closeHubs, hub, subscribed } from './helpers/hubs.ts';
import { freePort, sleep } from './helpers/net.ts';

/**
 * kill -9 of the server under steady ingest, then a restart on the same port and data dir: the SDK
 * reconnects by itself and resumes every topic from its position. Every message that got a 202 is
 * delivered once, in order; nothing is reported as a gap.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TOPICS = ['k9.a', 'k9.b', 'k9.c'];
const dirs: string[] = [];

afterEach(async () => {
  await closeHubs();
  await killChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function start(dir: string, port: number): Promise<Child> {
  return startCommandLine(process.execPath, [
    '--import',
    'tsx',
    MAIN,
    'start',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--data-dir',
    dir,
  ]);
}

describe('SDK: kill -9 of the server and a restart', () => {
  it('resumes every topic: nothing acknowledged is lost, nothing duplicated or reordered', async () => {
    const dir = tempDir('hubcast-sdk-k9-');
    dirs.push(dir);
    const client = JSON.parse((await cli(['clients', 'create', '--name', 'k9', '--subscribe', 'k9.>', '--json', '--data-dir', dir])).out);
    const key = (JSON.parse((await cli(['keys', 'create', '--name', 'k9', '--json', '--data-dir', dir])).out) as { key: string }).key;
    const port = await freePort();
    let p = await start(dir, port);
    const base = `http://127.0.0.1:${port}`;

    const x = hub({ url: base, clientId: client.client_id, clientSecret: client.client_secret, backoff: { initialMs: 100, maxMs: 500 } });
    const states = recordStates(x);
    const chk = new Checker();
    await Promise.all(TOPICS.map((t) => subscribed(chk.watch(x.subscribe(t)))));

    // One ingest loop, bounded; requests that fail (server gone) are retried with the same key.
    let i = 0;
    let stop = false;
    const loop = (async () => {
      for (; !stop && i < 2000; i++) {
        const topic = TOPICS[i % TOPICS.length]!;
        const data = { i };
        for (let tries = 0; !stop; tries++) {
          try {
            const r = await fetch(`${base}/entity/${topic}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': `m-${i}` },
              body: JSON.stringify(data),
              signal: AbortSignal.timeout(2000),
            });
            if (r.status === 202) {
              chk.ack(topic, ((await r.json()) as { offset: number }).offset, data);
              break;
            }
          } catch {
            // the server is down
          }
          if (tries > 1000) throw new Error(`message ${i} never accepted`);
          await sleep(20);
        }
      }
    })();

    await eventually(() => i >= 150, 10_000, '150 messages');
    await p.kill();
    expect((await p.exited).signal).toBe('SIGKILL');
    await sleep(300);
    p = await start(dir, port);
    const restartedAt = i;
    await eventually(() => i >= restartedAt + 150, 15_000, '150 more messages after the restart');
    stop = true;
    await loop;
    await eventually(() => chk.caughtUp(), 15_000, 'the consumer to catch up');
    chk.assertExact();
    expect(states.some((s) => s.state === 'disconnected' && s.info.code === 1006)).toBe(true);
    expect(x.state).toBe('connected');
  }, 60_000);
});
