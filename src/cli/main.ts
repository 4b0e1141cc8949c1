import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.ts';
import { clientsCommand, CLIENTS_USAGE } from './clients.ts';
import { configCommand, CONFIG_USAGE } from './config.ts';
import { connectCommand, CONNECT_USAGE } from './connect.ts';
import { demoCommand, DEMO_USAGE } from './demo.ts';
import { dlqCommand, DLQ_USAGE } from './dlq.ts';
import { keysCommand, KEYS_USAGE } from './keys.ts';
import { UsageError, type Io } from './options.ts';
import { pubCommand, PUB_USAGE } from './pub.ts';
import { startCommand, START_USAGE } from './start.ts';
import { subCommand, SUB_USAGE } from './sub.ts';

const USAGE = `Hubcast: a real-time push hub.

${START_USAGE}
${SUB_USAGE}
${PUB_USAGE}
${CONFIG_USAGE}
${CLIENTS_USAGE}
${KEYS_USAGE}
${CONNECT_USAGE}
${DLQ_USAGE}
${DEMO_USAGE}

Every command takes --data-dir DIR (or HUBCAST_DATA_DIR) and --config FILE. Docs: docs/.`;

const stdio: Io = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  bytes: (b) => void process.stdout.write(b),
};

/** Runs one CLI command; resolves with the exit code. */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        return await startCommand(rest, io);
      case 'sub':
        return await subCommand(rest, io);
      case 'pub':
        return await pubCommand(rest, io);
      case 'config':
        return await configCommand(rest, io);
      case 'clients':
        return await clientsCommand(rest, io);
      case 'keys':
        return await keysCommand(rest, io);
      case 'connect':
        return await connectCommand(rest, io);
      case 'dlq':
        return await dlqCommand(rest, io);
      case 'demo':
        return await demoCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      io.err(`hubcast: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** Runs the CLI as a process: exit code, errors on stderr, a closed stdout pipe ends quietly. */
export function runCli(argv = process.argv.slice(2)): void {
  // `hubcast config print | head`: a closed pipe ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`hubcast: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runCli();
