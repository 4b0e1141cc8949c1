import { resolve } from 'node:path';
import { isatty } from 'node:tty';
import { createServer } from '../server.ts';
import { configFrom, parse, type Io } from './options.ts';
import { removePidFile, writePidFile } from './pid-file.ts';

export const START_USAGE = `hubcast start [--config FILE] [--host H] [--port N] [--data-dir DIR] [--<any config key>]
  Starts the hub (embedded default: SQLite in --data-dir, in-memory broker). Logs go to stderr.
  SIGTERM/SIGINT: graceful shutdown within shutdown.graceS, exit 0. SIGHUP (with tls.cert/tls.key):
  reload the certificate and key without dropping connections; without TLS it is logged and ignored
  (the hangup of a closed terminal stops it, as SIGTERM does).
  --pid-file FILE: write the process id there once listening (removed at exit).`;

/**
 * `hubcast start`. `exit` ends the process when shutdown overruns `shutdown.graceS` (tests of the
 * command in-process pass their own).
 */
export async function startCommand(args: string[], io: Io, exit: (code: number) => void = (code) => process.exit(code)): Promise<number> {
  const { values } = parse(args);
  if (values.help) {
    io.out(START_USAGE + '\n');
    return 0;
  }
  const server = createServer(configFrom(values));
  const { log, config } = server;
  await server.listen();
  const pidFile = config.pidFile === '' ? undefined : resolve(config.pidFile);
  if (pidFile) {
    try {
      writePidFile(pidFile);
    } catch (err) {
      await server.close();
      throw err;
    }
    log.info({ pid_file: pidFile, pid: process.pid }, 'pid file written');
  }

  // The listeners stay: a second signal (Ctrl-C under `npm start` reaches this process from the
  // terminal and again from npm, which forwards it) must not kill the process in the middle of its
  // shutdown; the grace deadline bounds it anyway.
  let stopping = false;
  let stop: (sig: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => (stop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return void log.info({ signal: sig }, 'already shutting down');
    stopping = true;
    stop(sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // SIGHUP is always handled: its default action would end the process, and a reload sent to a
  // server without TLS must not stop it. Except when the terminal it runs in hangs up (closed): that
  // means stop, as for any program in a terminal. The descriptors that were that terminal then no
  // longer are one (the kernel swaps their operations before it signals).
  const ttys = [0, 1, 2].filter((fd) => isatty(fd));
  process.on('SIGHUP', () => {
    if (ttys.some((fd) => !isatty(fd))) return onSignal('SIGHUP');
    if (config.tls.cert === '') return void log.info('SIGHUP: nothing to reload (TLS not configured)');
    // A failed reload (unreadable file, key that does not match) keeps serving the current certificate.
    server.reloadTls().then(
      () => log.info({ cert: config.tls.cert }, 'TLS certificate reloaded'),
      (err: unknown) => log.error({ err: (err as Error).message }, 'TLS reload failed; keeping the current certificate'),
    );
  });

  const signal = await stopped;
  const graceMs = config.shutdown.graceS * 1000;
  const deadline = Date.now() + graceMs;
  log.info({ signal, grace_s: config.shutdown.graceS }, 'shutting down');
  // Not unref'd: it must fire even while something (a stuck socket, a hung flush) holds the loop,
  // and it keeps the process up until then. Cleared when the shutdown completes in time.
  const hard = setTimeout(() => {
    log.warn({ grace_s: config.shutdown.graceS }, 'shutdown did not finish within shutdown.graceS; exiting');
    if (pidFile) removePidFile(pidFile);
    exit(0);
  }, graceMs);
  try {
    await server.close();
  } catch (err) {
    log.error({ err }, 'error while shutting down');
  } finally {
    clearTimeout(hard);
    if (pidFile) removePidFile(pidFile);
  }
  // Whatever still holds the event loop after a complete shutdown must not outlive the deadline.
  setTimeout(() => exit(0), Math.max(0, deadline - Date.now())).unref();
  return 0;
}
