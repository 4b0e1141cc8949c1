import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * `hubcast <command>` as a real child process (stdin, stdout, stderr, exit code and signals as a user
 * sees them). Every process started here is tracked: call `stopAll()` in afterEach.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const live = new Set<ChildProcess>();

/** Credentials a developer's shell may carry: a test gives them explicitly or not at all. */
const CLEARED = { HUBCAST_KEY: undefined, HUBCAST_TOKEN: undefined, HUBCAST_CLIENT_ID: undefined, HUBCAST_CLIENT_SECRET: undefined };

function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  /** Everything written to stdout so far, as bytes. */
  stdoutBytes(): Buffer;
  stderr(): string;
  /** The complete stdout lines so far. */
  lines(): string[];
  /** Waits (bounded) until stdout holds at least `n` complete lines; returns them. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Waits (bounded) until stderr matches. */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Settles with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `hubcast ARGS…`; `input` is written to its stdin, which is then closed (none: stdin is closed at once). */
export function startCli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string | undefined> } = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: cleanEnv({ ...process.env, ...CLEARED, ...opts.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  const outBytes: Buffer[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', (d: Buffer) => {
    outBytes.push(d);
    out += d.toString();
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    notify();
  });
  child.stdin!.on('error', () => {}); // a command that exits before reading its input
  child.stdin!.end(opts.input ?? '');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
      notify();
    }),
  );
  const lines = () => out.split('\n').slice(0, -1);
  const waitFor = (ok: () => boolean, what: () => string, ms: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (ok()) return done(resolve);
        if (child.exitCode !== null || child.signalCode !== null)
          done(() => reject(new Error(`exited (${child.exitCode}) before ${what()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`))), ms);
      const done = (f: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });
  return {
    child,
    stdout: () => out,
    stdoutBytes: () => Buffer.concat(outBytes),
    stderr: () => err,
    lines,
    async waitForLines(n, ms = 10_000) {
      await waitFor(
        () => lines().length >= n,
        () => `${n} stdout lines; stdout: ${out.slice(-1000)} stderr: ${err.slice(-1000)}`,
        ms,
      );
      return lines();
    },
    waitForStderr: (re, ms = 10_000) =>
      waitFor(
        () => re.test(err),
        () => `stderr ${String(re)}; stderr: ${err.slice(-1000)}`,
        ms,
      ),
    exited,
  };
}

/** Runs `hubcast ARGS…` to its end (bounded); resolves with what it printed and its exit code. */
export async function runCli(
  args: string[],
  opts: { input?: string | Buffer; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const p = startCli(args, opts);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, out: p.stdout(), err: p.stderr() };
}

/** SIGKILLs every CLI process still running and waits for them (afterEach). */
export async function stopAll(): Promise<void> {
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
