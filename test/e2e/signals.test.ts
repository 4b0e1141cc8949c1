import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectedConsumer, descendants, isAlive, killChildren, startChild, startCommandLine, type Child } from '../helpers/child.ts';
import { eventually, tempDir } from '../helpers/server.ts';
import { TestClient, type Closed } from '../helpers/ws-client.ts';

/**
 * The start commands that docs/operations.md gives to supervisors, run as real processes: a signal
 * sent to the pid the supervisor knows must reach Hubcast, and nothing may outlive it.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVE = ['--host', '127.0.0.1', '--port', '0'];

/** Processes a test started indirectly (npm's children): killed after each test, whatever happened. */
let strays: number[] = [];
afterEach(async () => {
  for (const pid of strays) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  strays = [];
  await killChildren();
});

/** The close the consumer saw, or a clear failure when none came within `ms`. */
function closedWithin(c: TestClient, ms: number): Promise<Closed> {
  return Promise.race([
    c.closed,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no close within ${ms} ms: the signal did not reach Hubcast`)), ms),
    ),
  ]);
}

/** The arguments of a process (argv[0] first), or [] once it is gone. */
function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Whether the process is a `node … start` (Hubcast itself, not npm or a shell that started it). */
function isHubcast(pid: number): boolean {
  const [argv0 = '', ...args] = argvOf(pid);
  return ['node', basename(process.execPath)].includes(basename(argv0)) && args.includes('start');
}

/** SIGTERM to `p`'s pid: the consumer gets 1001, the process exits 0, and no descendant survives it. */
async function stopsGracefully(p: Child, dataDir: string): Promise<void> {
  const tree = descendants(p.child.pid!);
  strays = tree;
  // The process that runs Hubcast: the signalled one itself, or one npm started.
  const hubcast = [p.child.pid!, ...tree].filter(isHubcast);
  expect(hubcast).toHaveLength(1);
  const { c } = await connectedConsumer(p.port, dataDir);
  p.child.kill('SIGTERM');
  expect((await closedWithin(c, 10_000)).code).toBe(1001);
  expect(await p.exited).toEqual({ code: 0, signal: null });
  // The signalled process must not exit before Hubcast has: a supervisor takes its exit as "stopped".
  expect(isAlive(hubcast[0]!), 'Hubcast still running after the command exited').toBe(false);
  // Helpers (tsx's esbuild service) end when their parent's pipe closes, a moment later.
  await eventually(
    () => tree.filter(isAlive).length === 0,
    3000,
    `no process left of ${tree.map((pid) => argvOf(pid).join(' ')).join('; ')}`,
  );
  expect(p.logs().map((l) => l.msg)).toContain('hubcast stopped');
}

/** The newest modification time of the files under `dir`. */
function newest(dir: string): number {
  return Math.max(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => statSync(join(dir, f)).mtimeMs));
}

describe('SIGTERM to the documented start command', () => {
  beforeAll(() => {
    // bin/hubcast.js runs dist/ (built by `npm ci` through `prepare`); rebuild it when src/ is newer.
    const built = join(ROOT, 'dist/src/cli/main.js');
    if (!existsSync(built) || statSync(built).mtimeMs < Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'packages/client/src')))) {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
        cwd: ROOT,
        timeout: 120_000,
      });
    }
  }, 130_000);

  it('`node bin/hubcast.js start` (for supervisors): consumers get 1001, exit 0, nothing left running', async () => {
    const dir = tempDir();
    const p = await startCommandLine(process.execPath, ['bin/hubcast.js', 'start', ...SERVE, '--data-dir', dir]);
    await stopsGracefully(p, dir);
  });

  it('`npm start` (the quick start): npm passes SIGTERM on and waits; consumers get 1001, exit 0, no orphan', async () => {
    const dir = tempDir();
    const p = await startCommandLine('npm', ['start', '--', ...SERVE, '--data-dir', dir], {}, 30_000);
    await stopsGracefully(p, dir);
  });
});

describe('SIGHUP and the pid file', () => {
  it('SIGHUP without TLS is logged and ignored: the server keeps serving its consumers', async () => {
    const dir = tempDir();
    const p = await startChild(dir);
    const { c } = await connectedConsumer(p.port, dir);
    p.child.kill('SIGHUP');
    await p.waitForLog('SIGHUP: nothing to reload (TLS not configured)');
    expect((await fetch(`http://127.0.0.1:${p.port}/healthz`)).status).toBe(200);
    c.send({ type: 'ping', id: 'still-there' });
    expect(await c.next('pong')).toMatchObject({ id: 'still-there' });
    expect(p.child.exitCode).toBe(null);
  });

  it.skipIf(!existsSync('/usr/bin/script'))('the hangup of its terminal still stops it gracefully', async () => {
    const dir = tempDir();
    const file = join(dir, 'hubcast.pid');
    // script(1) runs the command on a pseudo-terminal; killing script closes that terminal (a hangup).
    const cmd = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'start', ...SERVE, '--data-dir', dir, '--pid-file', file];
    const term = spawn('/usr/bin/script', ['-qfc', cmd.join(' '), '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    term.stdout.resume();
    try {
      const pid = Number(await eventually(() => existsSync(file) && readFileSync(file, 'utf8'), 15_000, 'the pid file'));
      strays = [pid];
      term.kill('SIGKILL');
      // Graceful: the pid file is removed on the way out (a SIGHUP's default action would leave it).
      await eventually(() => !existsSync(file) && !isAlive(pid), 10_000, 'Hubcast to stop after its terminal closed');
    } finally {
      term.kill('SIGKILL');
    }
  });

  it('--pid-file: written with the pid once listening, removed at a graceful exit', async () => {
    const dir = tempDir();
    const file = join(dir, 'hubcast.pid');
    const p = await startChild(dir, { HUBCAST_PID_FILE: file });
    expect(readFileSync(file, 'utf8')).toBe(`${p.child.pid}\n`);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(existsSync(file)).toBe(false);
  });

  it('a pid file that cannot be written stops start-up with exit code 2 naming the key', async () => {
    const dir = tempDir();
    const args = [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'start',
      ...SERVE,
      '--data-dir',
      dir,
      '--pid-file',
      join(dir, 'no-such-folder', 'pid'),
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code).toBe(2);
    expect(err).toMatch(/hubcast: pidFile: cannot write ".*no-such-folder.*": ENOENT/);
  });
});
