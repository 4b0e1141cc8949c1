import { z } from 'zod';
import type { Logger } from '../logger.ts';
import { commonConnectorFields } from './config.ts';
import type { Connector } from './connector.ts';
import * as amqp from './amqp.ts';
import * as file from './file.ts';
import * as httpPoll from './http-poll.ts';
import * as postgres from './postgres.ts';
import * as mqtt from './mqtt.ts';
import * as nats from './nats.ts';
import * as webhook from './webhook.ts';

export type * from './connector.ts';

const base = z.object(commonConnectorFields);

/** One connector's config: the common fields plus its type's own settings (beside each implementation). */
export const connectorConfigSchema = z.discriminatedUnion('type', [
  base.extend({ type: z.literal('amqp'), ...amqp.settings.shape }).strict(),
  base.extend({ type: z.literal('mqtt'), ...mqtt.settings.shape }).strict(),
  base.extend({ type: z.literal('postgres'), ...postgres.settings.shape }).strict(),
  base.extend({ type: z.literal('file'), ...file.settings.shape }).strict(),
  base.extend({ type: z.literal('nats'), ...nats.settings.shape }).strict(),
  base.extend({ type: z.literal('http-poll'), ...httpPoll.settings.shape }).strict(),
  base.extend({ type: z.literal('webhook'), ...webhook.settings.shape }).strict(),
]);

export type ConnectorConfig = z.output<typeof connectorConfigSchema>;

/** The one place that picks a Connector implementation from config. */
export function createConnector(cfg: ConnectorConfig, deps: { log: Logger }): Connector {
  switch (cfg.type) {
    case 'amqp':
      return amqp.create(cfg, deps);
    case 'mqtt':
      return mqtt.create(cfg, deps);
    case 'postgres':
      return postgres.create(cfg, deps);
    case 'file':
      return file.create(cfg, deps);
    case 'nats':
      return nats.create(cfg, deps);
    case 'http-poll':
      return httpPoll.create(cfg, deps);
    case 'webhook':
      return webhook.create(cfg, deps);
  }
}
