import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startServer, tempDir, type Harness } from '../helpers/server.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `hubcast connect` as a real process; its stderr (JSON log lines) is collected. */
function connectProcess(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'connect', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, stderr: () => err };
}

const kill = async (c: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL') => {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await gone;
};

describe('hubcast connect (standalone mode, a real process)', () => {
  let h: Harness | undefined;
  let proxy: TcpProxy | undefined;
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    await kill(proc);
    await proxy?.close();
    await h?.close();
    h = proxy = proc = undefined;
  });

  it('gateway down for a while: records are spooled (acked at the source), gateway_unreachable is alerted, a kill -9 loses nothing, the spool drains in order', async () => {
    h = await startServer();
    const c: TestClient = await h.connect(await h.register(await h.createClient({ subscribe: ['files.>'] })));
    await c.subscribe('files.in', { offset: 0 });
    proxy = await TcpProxy.start(h.port);
    proxy.refuse();
    const inbox = tempDir();
    const dataDir = tempDir();
    const config = join(tempDir(), 'connect.json');
    writeFileSync(
      config,
      JSON.stringify({
        connect: { retry: { attempts: 2, initialMs: 50, maxMs: 200 } },
        alerts: { groupWaitS: 1 },
        connectors: [{ name: 'inbox', type: 'file', path: inbox, glob: '*.json', pollMs: 50, topic: 'files.in' }],
      }),
    );
    const args = ['--config', config, '--gateway', `http://127.0.0.1:${proxy.port}`, '--key', h.ingestKey, '--data-dir', dataDir];
    let p = connectProcess(args);
    proc = p.child;
    const drop = (i: number) => {
      const name = `r${String(i).padStart(4, '0')}.json`;
      writeFileSync(join(inbox, `.${name}`), JSON.stringify({ i }));
      renameSync(join(inbox, `.${name}`), join(inbox, name));
    };
    for (let i = 1; i <= 15; i++) drop(i);
    // Accepted into the spool: the source is acknowledged (the files are moved away) while the gateway is down.
    await eventually(() => readdirSync(inbox).filter((f) => f.endsWith('.json')).length === 0, 30_000, 'files taken');
    await eventually(() => /"alert":"gateway_unreachable"/.test(p.stderr()), 40_000, 'gateway_unreachable alert').catch((e: Error) => {
      throw new Error(
        `${e.message}; done: ${readdirSync(join(inbox, '.done')).length} left: ${readdirSync(inbox).join(',')} exit: ${proc?.exitCode}; got: ${c.all().length}; proxyConns: ${proxy?.connections}; stderr: ${p.stderr().slice(-3000)}`,
      );
    });
    expect(p.stderr()).not.toContain(h.ingestKey);
    // A crash with a full spool loses nothing.
    await kill(proc);
    for (let i = 16; i <= 20; i++) drop(i);
    p = connectProcess(args);
    proc = p.child;
    proxy.accept();
    const got: number[] = [];
    while (got.length < 20) got.push(((await c.next('message', 10_000)).data as { i: number }).i);
    expect(got).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
    await h.ingest('files.in', 'marker');
    expect(await c.next('message', 5000)).toMatchObject({ data: 'marker', offset: 21 });
    await kill(proc, 'SIGTERM');
    expect(proc.exitCode).toBe(0);
  }, 90_000);

  it('refuses bad usage: no gateway, a webhook connector', async () => {
    const config = join(tempDir(), 'c.json');
    writeFileSync(config, JSON.stringify({ connectors: [{ name: 'w', type: 'webhook', topic: 't', secret: 'x'.repeat(16) }] }));
    for (const args of [
      ['--config', config],
      ['--config', config, '--gateway', 'http://127.0.0.1:1', '--key', 'k'],
    ]) {
      const p = connectProcess(args);
      const code = await new Promise((r) => p.child.once('exit', r));
      expect(code).toBe(2);
    }
  });
});
