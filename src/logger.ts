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
export function createLogger(
  level: string,
  destination: pino.DestinationStream = pino.destination({ fd: 2, sync: false, minLength: 4096, periodicFlush: 250 }),
): Logger {
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
