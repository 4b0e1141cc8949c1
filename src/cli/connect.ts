import { createAlerts } from '../alerts/index.ts';
import { GatewaySink } from '../connectors/gateway-sink.ts';
import { ConnectorDb } from '../connectors/local-db.ts';
import { ConnectorRuntime } from '../connectors/runtime.ts';
import { systemClock } from '../core/clock.ts';
import { createLogger } from '../logger.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';

export const CONNECT_USAGE = `hubcast connect --config FILE --gateway URL [--key KEY] [--data-dir DIR]
  Standalone mode: runs only the connectors of FILE and publishes to the gateway's POST /entity
  (key: --key or HUBCAST_GATEWAY_KEY). Records are spooled in DIR/connectors.db until the gateway
  took them, so nothing is lost while it is unreachable. Webhook connectors need the gateway itself.`;

export async function connectCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { gateway: { type: 'string' }, key: { type: 'string' } });
  if (values.help) {
    io.out(CONNECT_USAGE + '\n');
    return 0;
  }
  const gateway = values.gateway as string | undefined;
  const key = (values.key as string | undefined) ?? process.env.HUBCAST_GATEWAY_KEY;
  if (!values.config || !gateway || !key) throw new UsageError(CONNECT_USAGE);
  if (!/^https?:\/\//.test(gateway)) throw new UsageError('--gateway must be an http:// or https:// URL');
  const config = configFrom(values);
  if (config.connectors.some((c) => c.type === 'webhook'))
    throw new UsageError('webhook connectors run inside the gateway (hubcast start), not in hubcast connect');
  const log = createLogger(config.logLevel);
  const alerts = createAlerts(config, log.child({ component: 'alerts' }), { clock: systemClock });
  await alerts.start();
  const db = new ConnectorDb(config.dataDir);
  const sink = new GatewaySink({ gateway, key, db, retry: config.connect.retry, alerts, log: log.child({ component: 'gateway-sink' }) });
  const runtime = new ConnectorRuntime({
    configs: config.connectors,
    sink,
    dataDir: config.dataDir,
    alerts,
    log: log.child({ component: 'connectors' }),
    clock: systemClock,
  });
  sink.start();
  await runtime.start();
  log.info(
    { gateway: gateway.replace(/\/\/[^/@]*@/, '//'), connectors: config.connectors.length, spooled: db.spooled },
    'hubcast connect running',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('hubcast connect stopping');
  await runtime.stop();
  await sink.stop();
  db.close();
  await alerts.close();
  return 0;
}
