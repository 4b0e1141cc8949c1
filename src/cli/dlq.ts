import { ConnectorDb } from '../connectors/local-db.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';

export const DLQ_USAGE = `hubcast dlq list [--connector NAME] [--json]
hubcast dlq retry ID...|--all
hubcast dlq drop ID...|--all
  Records a connector's pipeline rejected (bad data, expression error), with the reason. retry sends
  them through their connector's pipeline again (the running server picks them up within a second).`;

export async function dlqCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { connector: { type: 'string' }, json: { type: 'boolean' }, all: { type: 'boolean' } });
  if (values.help || !sub) {
    io.out(DLQ_USAGE + '\n');
    return sub ? 0 : 2;
  }
  const config = configFrom(values);
  const ids = (): number[] | 'all' => {
    if (values.all) return 'all';
    const list = positionals.map(Number);
    if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n))) throw new UsageError(`dlq ${sub} needs ID... or --all`);
    return list;
  };
  const db = new ConnectorDb(config.dataDir);
  try {
    switch (sub) {
      case 'list': {
        const rows = db.listDeadLetters(values.connector as string | undefined).map((d) => ({
          id: d.id,
          connector: d.connector,
          key: d.key,
          kind: d.kind,
          format: d.format ?? 'bytes',
          reason: d.reason,
          at: new Date(d.at).toISOString(),
          bytes: d.value.length,
        }));
        if (values.json) io.out(JSON.stringify({ dead_letters: rows }) + '\n');
        else if (rows.length === 0) io.out('no dead letters\n');
        else for (const r of rows) io.out(`${r.id}  ${r.at}  ${r.connector}  ${r.key}  ${r.reason}\n`);
        return 0;
      }
      case 'retry': {
        const n = db.requestRetry(ids());
        io.err(`${n} marked for retry\n`);
        return n > 0 ? 0 : 1;
      }
      case 'drop': {
        const n = db.drop(ids());
        io.err(`${n} dropped\n`);
        return n > 0 ? 0 : 1;
      }
      default:
        throw new UsageError(DLQ_USAGE);
    }
  } finally {
    db.close();
  }
}
