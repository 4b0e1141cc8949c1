import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { sleep } from './helpers/net.ts';

/**
 * kill -9 of a consumer process that keeps its positions in a file (`fileStorage`): the restarted
 * process resumes where the file says. Nothing is lost; what was handed to the application in the
 * last instant before the kill may come again (at least once across a consumer crash), and only that.
 */

const CONSUMER = fileURLToPath(new URL('./helpers/consumer.ts', import.meta.url));
const live = new Set<ChildProcess>();
let h: Harness | undefined;
const dirs: string[] = [];
afterEach(async () => {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
  await h?.close();
  h = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function consumer(args: string[]): { offsets: number[]; subscribed: () => boolean; kill: () => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CONSUMER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const offsets: number[] = [];
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) offsets.push(Number(l));
  });
  child.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  return {
    offsets,
    subscribed: () => err.includes('subscribed'),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
      live.delete(child);
    },
  };
}

describe('SDK: kill -9 of a consumer with fileStorage', () => {
  it('the restarted consumer resumes from the file: nothing lost, at most the last instant again', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['cc.>'] });
    const dir = tempDir('hubcast-cc-');
    dirs.push(dir);
    const args = [h.base, creds.client_id, creds.client_secret, join(dir, 'positions.json'), 'cc.t'];
    const first = consumer(args);
    await eventually(first.subscribed, 15_000, 'the first consumer subscribed');

    let n = 0;
    let stop = false;
    const publisher = (async () => {
      while (!stop && n < 3000) {
        const r = await h!.ingest('cc.t', { n: n + 1 });
        if (r.status === 202) n++;
        if (n % 20 === 0) await sleep(5);
      }
    })();
    await eventually(() => first.offsets.length >= 200, 15_000, '200 messages in the first consumer');
    await first.kill();
    const second = consumer(args);
    await eventually(second.subscribed, 15_000, 'the second consumer subscribed');
    await eventually(() => n >= 600, 15_000, '600 published');
    stop = true;
    await publisher;
    await eventually(() => second.offsets.at(-1) === n, 15_000, 'the second consumer caught up');

    const a = first.offsets;
    const b = second.offsets;
    expect(a).toEqual(Array.from({ length: a.length }, (_, i) => i + 1));
    expect(b[0]!, 'no message lost between the two').toBeLessThanOrEqual(a.at(-1)! + 1);
    expect(b).toEqual(Array.from({ length: b.length }, (_, i) => b[0]! + i));
    const again = a.at(-1)! - b[0]! + 1;
    expect(again, 'delivered again after the kill').toBeGreaterThanOrEqual(0);
    expect(again).toBeLessThanOrEqual(100);
  }, 60_000);
});
