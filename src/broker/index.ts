import type { Config } from '../config/schema.ts';
import type { Broker } from './broker.ts';
import { MemoryBroker } from './memory-broker.ts';

export type * from './broker.ts';

/** The one place that picks a Broker implementation from config. */
export function createBroker(config: Config): Broker {
  switch (config.broker.type) {
    case 'memory':
      return new MemoryBroker();
    case 'redis':
    case 'nats':
    case 'postgres':
      throw new Error(`broker.type ${config.broker.type} is not implemented yet`);
  }
}
