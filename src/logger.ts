import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON log lines on stderr. Never log a token, ticket, secret or key: log reasons, client ids,
 * connection ids and paths (never a query string: it may carry a ticket).
 */
export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: false })): Logger {
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
