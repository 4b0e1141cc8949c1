/** Hubcast's public API: everything not exported here is internal. */
export { createServer, type HubcastServer, type ServerOptions } from './server.ts';
export { loadConfig, parseConfig, CONFIG_KEYS, type ConfigKey } from './config/load.ts';
export { configSchema, type Config, type ConfigInput } from './config/schema.ts';
export { ERRORS, HubcastError, ConfigError, type ErrorCode } from './core/errors.ts';
export { CloseCode } from './gateway/gateway.ts';
export { REFUSAL_CLOSE } from './gateway/refuse.ts';
export type { Clock } from './core/clock.ts';
export type { PublishResult } from './core/publisher.ts';
export type { Store, PayloadKind } from './store/store.ts';
export type { Broker, Publication } from './broker/broker.ts';
