import { createServer } from '../server.ts';
import { configFrom, parse, type Io } from './options.ts';

export const START_USAGE = `hubcast start [--config FILE] [--host H] [--port N] [--data-dir DIR] [--<any config key>]
  Starts the hub (embedded default: SQLite in --data-dir, in-memory broker). Logs go to stderr.`;

export async function startCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args);
  if (values.help) {
    io.out(START_USAGE + '\n');
    return 0;
  }
  const server = createServer(configFrom(values));
  await server.listen();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      server.log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  return 0;
}
