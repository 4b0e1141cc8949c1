import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Broker } from './broker.ts';
import { MemoryBroker } from './memory-broker.ts';
import { NatsBroker } from './nats-broker.ts';
import { PostgresBroker } from './postgres-broker.ts';
import { RedisBroker } from './redis-broker.ts';

export type * from './broker.ts';

/** The one place that picks a Broker implementation from config. */
export function createBroker(config: Config, log?: Logger): Broker {
  const { type, url, prefix } = config.broker;
  switch (type) {
    case 'memory':
      return new MemoryBroker();
    case 'redis':
      return new RedisBroker({ url: url || 'redis://127.0.0.1:6379', prefix, log });
    case 'nats':
      return new NatsBroker({ url: url || 'nats://127.0.0.1:4222', prefix, log });
    case 'postgres':
      return new PostgresBroker({ url: url || config.store.url, prefix, log });
  }
}
