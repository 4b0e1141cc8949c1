import { isatty } from 'node:tty';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON log lines on stderr. Never log a token, ticket, secret or key: log reasons, client ids,
 * connection ids and paths (never a query string: it may carry a ticket).
 *
 * Lines are written in batches (4 KiB, or every 250 ms, and on exit) rather than one write per line:
 * a connection churn of thousands per second would otherwise spend more on log writes than on the
 * connections themselves.
 */
export function createLogger(level: string, destination: pino.DestinationStream = stderr()): Logger {
  return pino(
    {
      level,
      base: { service: 'hubcast' },
      redact: {
        paths: ['token', 'ticket', 'secret', 'key', 'client_secret', 'authorization', '*.authorization', '*.token'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * stderr, batched. Once it is gone (its terminal hung up: EIO; its reader went away: EPIPE) lines are
 * dropped instead of retried: sonic-boom's flushSync, which pino runs at exit, retries a failing
 * write every 100 ms for ever, so the process could never exit. (pino itself does this for EPIPE only.)
 */
function stderr(): pino.DestinationStream {
  const dest = pino.destination({ fd: 2, sync: false, minLength: 4096, periodicFlush: 250 });
  const drop = () => void Object.assign(dest, { write: () => true, flush: () => {}, flushSync: () => {}, end: () => {} });
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EAGAIN') drop();
  });
  // A hung-up terminal is no longer a terminal (its descriptor's operations are swapped at hangup).
  const wasTty = isatty(2);
  const flushSync = dest.flushSync.bind(dest);
  dest.flushSync = () => (wasTty && !isatty(2) ? drop() : flushSync());
  return dest;
}
