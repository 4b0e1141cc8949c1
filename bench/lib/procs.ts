import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { TASKSET } from './machine.ts';
import { monoMs, sleep } from './time.ts';

/**
 * Child processes of the bench: started (pinned to a CPU where taskset exists), talked to over IPC,
 * measured through /proc, and always stopped — SIGTERM, then SIGKILL after a bound — by
 * `Children.stopAll()` in a finally block, and by the runner's exit hook should anything escape.
 */

export const NODE_TSX = ['--import', 'tsx'];

/** Every child started by any `Children`, for the runner's last-resort exit hook. */
const everyChild = new Set<ChildProcess>();

/** SIGKILLs whatever is still running (synchronous: safe in an 'exit' handler). */
export function killEveryChild(): void {
  for (const c of everyChild) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export interface ChildSpec {
  /** For logs and errors. */
  name: string;
  /** A script run by Node with tsx (ignored when `command` is set). */
  script: string;
  /** Run this program (e.g. /usr/sbin/nats-server) with `args` instead of Node + tsx + `script`. */
  command?: string;
  args?: string[];
  /** Extra Node flags (`--cpu-prof`). */
  nodeArgs?: string[];
  /** Pin to this CPU with taskset, where taskset exists. */
  cpu?: number;
  env?: Record<string, string>;
  /** stdout and stderr are appended here (never buffered in the bench process). */
  logFile: string;
  /** Open an IPC channel (workers). */
  ipc?: boolean;
  /**
   * Raise RLIMIT_NOFILE to this before exec (`bash -c 'ulimit -n N || ulimit -n hard; exec …'`): as
   * far as the hard limit allows. The pid is still Node's (bash and taskset exec).
   */
  nofile?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Message = { type: string; [k: string]: unknown };

/** One started child: its pid (the Node process itself: taskset execs), its IPC messages, its exit. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly #inbox: Message[] = [];
  readonly #waiters = new Set<() => void>();
  #exit: Exit | undefined;

  constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    this.exited = new Promise<Exit>((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        everyChild.delete(proc);
        resolve(this.#exit);
        this.#wake();
      });
      proc.once('error', () => {
        // spawn failure: 'exit' may not follow; report it as an exit.
        if (this.#exit) return;
        this.#exit = { code: -1, signal: null };
        everyChild.delete(proc);
        resolve(this.#exit);
        this.#wake();
      });
    });
    proc.on('message', (m: Message) => {
      this.#inbox.push(m);
      this.#wake();
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  send(msg: Message): void {
    if (this.running && this.proc.connected) this.proc.send(msg);
  }

  /**
   * The next message of `type` (earlier ones of other types stay queued). Rejects when the child
   * reports `{type:'error'}`, exits, or `timeoutMs` passes.
   */
  next<T = Message>(type: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const err = this.#inbox.findIndex((m) => m.type === 'error');
        if (err !== -1) return done(() => reject(new Error(`${this.name}: ${String(this.#inbox[err]!.message)}`)));
        const i = this.#inbox.findIndex((m) => m.type === type);
        if (i !== -1) {
          const [m] = this.#inbox.splice(i, 1);
          return done(() => resolve(m as T));
        }
        if (this.#exit) done(() => reject(new Error(`${this.name} exited (${JSON.stringify(this.#exit)}) before sending "${type}"`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with the exit. */
  async stop(graceMs = 5000): Promise<Exit & { forced: boolean; ms: number }> {
    const started = monoMs();
    if (!this.running) return { ...this.#exit!, forced: false, ms: 0 };
    this.proc.kill('SIGTERM');
    const inTime = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!inTime) {
      this.proc.kill('SIGKILL');
      await Promise.race([this.exited, sleep(5000)]);
    }
    return { ...(this.#exit ?? { code: null, signal: null }), forced: !inTime, ms: Math.round(monoMs() - started) };
  }
}

/** The children of one scenario run. */
export class Children {
  readonly #live = new Set<Child>();
  readonly #log: (msg: string) => void;

  constructor(log: (msg: string) => void) {
    this.#log = log;
  }

  start(spec: ChildSpec): Child {
    const exe = spec.command ?? process.execPath;
    const node = spec.command ? (spec.args ?? []) : [...NODE_TSX, ...(spec.nodeArgs ?? []), spec.script, ...(spec.args ?? [])];
    const pinned = spec.cpu !== undefined && existsSync(TASKSET);
    let [cmd, argv] = pinned ? [TASKSET, ['-c', String(spec.cpu), exe, ...node]] : [exe, node];
    if (spec.nofile) {
      argv = ['-c', 'ulimit -n "$0" 2>/dev/null || ulimit -n hard; exec "$@"', String(spec.nofile), cmd, ...argv];
      cmd = '/bin/bash';
    }
    const fd = openSync(spec.logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(cmd, argv, {
        env: { ...process.env, ...spec.env },
        stdio: spec.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
        serialization: 'json',
      });
    } finally {
      closeSync(fd);
    }
    everyChild.add(proc);
    const child = new Child(spec.name, proc);
    this.#live.add(child);
    void child.exited.then(() => this.#live.delete(child));
    this.#log(`  started ${spec.name} pid ${proc.pid}${pinned ? ` on CPU ${spec.cpu}` : ''} (log ${spec.logFile})`);
    return child;
  }

  /** Stops every child still running (in parallel), each bounded by `graceMs` before SIGKILL. */
  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all([...this.#live].map((c) => c.stop(graceMs)));
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200; rejects after `timeoutMs` or when `child` exits. */
export async function waitForHttp(url: string, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = monoMs() + timeoutMs;
  let last = '';
  while (monoMs() < deadline) {
    if (child && !child.running) throw new Error(`${child.name} exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (${last})`);
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

export interface ProcSample {
  /** Resident set size, MiB (VmRSS). */
  rssMiB: number;
  /** User + system CPU time so far, seconds. */
  cpuS: number;
}

/** RSS (from /proc/<pid>/status) and CPU time (from /proc/<pid>/stat); null once the process is gone. */
export function sampleProc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { rssMiB: rss ? Number(rss[1]) / 1024 : 0, cpuS: ticks / CLK_TCK };
  } catch {
    return null;
  }
}
