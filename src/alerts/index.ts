import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Alerts } from './alerts.ts';

export type * from './alerts.ts';

/** Builds the alerts subsystem from config. (Interim: alerts go to the log only.) */
export function createAlerts(_config: Config, log: Logger): Alerts {
  return {
    raise: (e) => log.warn({ alert: e.kind, client_id: e.clientId, ip: e.ip, detail: e.detail }, `alert: ${e.kind}`),
    start: async () => {},
    close: async () => {},
  };
}
