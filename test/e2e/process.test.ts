import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { connectedConsumer } from '../helpers/child.ts';
import { tempDir } from '../helpers/server.ts';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

function startProcess(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; port: Promise<number>; stderr: () => string } {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const port = new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"port":(\d+)[^\n]*"msg":"hubcast listening"/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, port, stderr: () => err };
}

describe('hubcast start (a real process)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('serves, sees CLI changes without a restart, and shuts down on SIGTERM: consumers get 1001, exit 0', async () => {
    const dir = tempDir();
    const p = startProcess(['start', '--host', '127.0.0.1', '--port', '0'], { HUBCAST_DATA_DIR: dir });
    child = p.child;
    const port = await p.port;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    // A client created while the server runs can register at once.
    const { c, token, secret } = await connectedConsumer(port, dir);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    expect((await c.closed).code).toBe(1001);
    const [code] = await exited;
    expect(code).toBe(0);
    expect(p.stderr()).not.toContain(token);
    // Logs are JSON lines, nothing else (no framework warnings).
    for (const line of p.stderr().split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
    expect(p.stderr()).not.toContain(secret);
  });

  it('refuses invalid config with exit code 2 and a message naming the key', async () => {
    const p = startProcess(['start', '--port', '0'], { HUBCAST_HISTORY_SIZE: 'many', HUBCAST_DATA_DIR: tempDir() });
    child = p.child;
    p.port.catch(() => {});
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(p.stderr()).toMatch(/history\.size.*HUBCAST_HISTORY_SIZE/);
  });
});
