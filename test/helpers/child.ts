import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { cli } from './server.ts';
import { TestClient } from './ws-client.ts';

/**
 * `hubcast start` as a real child process, for the tests that need signals and crashes (shutdown,
 * kill -9, SIGHUP). Every process started here is tracked: call `killChildren()` in afterEach.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const live = new Set<ChildProcess>();

export interface Child {
  child: ChildProcess;
  port: number;
  /** Everything written to stderr so far (JSON log lines). */
  stderr(): string;
  /** Parsed log lines so far. */
  logs(): Record<string, unknown>[];
  /** Waits (bounded) until a log line's `msg` matches. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Settles with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL and wait for the exit (no-op once exited). */
  kill(): Promise<void>;
}

function parseLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      out.push({ msg: line });
    }
  }
  return out;
}

/**
 * Starts `hubcast start --host 127.0.0.1 --port 0 --data-dir DIR` with extra `env`; resolves once it
 * logs "hubcast listening" (rejects if it exits first or `timeoutMs` passes).
 */
export function startChild(dataDir: string, env: Record<string, string> = {}, timeoutMs = 15_000): Promise<Child> {
  const args = ['--import', 'tsx', MAIN, 'start', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
  return startCommandLine(process.execPath, args, env, timeoutMs);
}

/**
 * Runs a command line that starts Hubcast (`npm start -- …`, `node bin/hubcast.js start …`) in the
 * repository folder; resolves once it logs "hubcast listening", like `startChild`.
 */
export function startCommandLine(command: string, args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<Child> {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);
  let err = '';
  const listeners = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
      for (const l of [...listeners]) l();
    }),
  );
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  const waitForLog = (msg: string | RegExp, ms = 5000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const match = (m: unknown) => typeof m === 'string' && (typeof msg === 'string' ? m === msg : msg.test(m));
      const check = () => {
        const hit = parseLines(err).find((l) => match(l.msg));
        if (hit) return done(() => resolve(hit));
        if (child.exitCode !== null || child.signalCode !== null)
          done(() => reject(new Error(`exited before logging ${String(msg)}: ${err}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no log line ${String(msg)} within ${ms} ms: ${err.slice(-2000)}`))), ms);
      const done = (f: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });
  return waitForLog('hubcast listening', timeoutMs).then(
    (line) => ({
      child,
      port: line.port as number,
      stderr: () => err,
      logs: () => parseLines(err),
      waitForLog,
      exited,
      kill,
    }),
    async (e: unknown) => {
      await kill();
      throw e;
    },
  );
}

/** SIGKILLs every child still running and waits for them (afterEach). */
export async function killChildren(): Promise<void> {
  await Promise.all(
    [...live].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }),
  );
  live.clear();
}

/** The ids of every living descendant of `pid` (children, grandchildren…), read from /proc (Linux). */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name, which is in parentheses and may contain spaces: state, ppid, …
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = [...parentOf].filter(([, ppid]) => frontier.includes(ppid)).map(([p]) => p);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** Whether a process with this id exists (a zombie counts until reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A client created with the CLI (subscribe `>`), registered and connected to the server on `port`, past its `welcome`. */
export async function connectedConsumer(port: number, dataDir: string): Promise<{ c: TestClient; token: string; secret: string }> {
  const created = JSON.parse(
    (await cli(['clients', 'create', '--name', 'consumer', '--subscribe', '>', '--json', '--data-dir', dataDir])).out,
  );
  const reg = await fetch(`http://127.0.0.1:${port}/consumers`, {
    method: 'POST',
    headers: { client_id: created.client_id, client_secret: created.client_secret },
  });
  expect(reg.status).toBe(201);
  const { token } = (await reg.json()) as { token: string };
  const c = new TestClient(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${token}` } });
  await c.opened;
  await c.next('welcome');
  return { c, token, secret: created.client_secret as string };
}
