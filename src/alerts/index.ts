import { join } from 'node:path';
import type { Leases } from '../cluster/leases.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../logger.ts';
import { AlertManager } from './alert-manager.ts';
import type { RecentAlerts } from './recent.ts';
import { Delivery } from './delivery.ts';
import { EmailNotifier } from './email-notifier.ts';
import { LogNotifier } from './log-notifier.ts';
import type { Notifier } from './notifier.ts';
import { WebhookNotifier } from './webhook-notifier.ts';

export type * from './alerts.ts';
export type { AlertDigest, Notifier } from './notifier.ts';
export { RecentAlerts, type RecentAlert } from './recent.ts';

const CHANNELS = ['email', 'webhook'] as const;

/** The channels config turns on: the log always, then e-mail and the webhook when they are set. */
export function alertChannels(config: Config): ('log' | 'email' | 'webhook')[] {
  return ['log', ...CHANNELS.filter((c) => (c === 'email' ? config.alerts.email.smtpUrl : config.alerts.webhook.url) !== '')];
}

/** The spooled notifier for `channel`, or undefined when config leaves it off. The one place channels are chosen. */
function notifierFor(channel: (typeof CHANNELS)[number], config: Config): Notifier | undefined {
  const { alerts } = config;
  switch (channel) {
    case 'email':
      return alerts.email.smtpUrl
        ? new EmailNotifier({ smtpUrl: alerts.email.smtpUrl, from: alerts.email.from, to: alerts.email.to })
        : undefined;
    case 'webhook':
      return alerts.webhook.url ? new WebhookNotifier(alerts.webhook.url) : undefined;
  }
}

/**
 * Builds the alerts subsystem from config: digests always go to the log, and through the durable
 * spool `<dataDir>/alerts.db` to e-mail and the webhook when they are configured. With `leases` (a
 * cluster), a digest goes out once per group and window for the whole cluster (see AlertManager).
 */
export function createAlerts(
  config: Config,
  log: Logger,
  deps: { clock: Clock; leases?: Leases | undefined; recent?: RecentAlerts | undefined },
): AlertManager {
  const spooled = CHANNELS.map((c) => notifierFor(c, config)).filter((n): n is Notifier => n !== undefined);
  const sink = new Delivery({
    spoolPath: join(config.dataDir, 'alerts.db'),
    immediate: [new LogNotifier(log)],
    spooled,
    retry: config.alerts.retry,
    log,
    recent: deps.recent,
  });
  return new AlertManager({
    groupWaitS: config.alerts.groupWaitS,
    repeatS: config.alerts.repeatS,
    clock: deps.clock,
    nodeId: config.nodeId,
    sink,
    ...(deps.leases ? { leases: deps.leases } : {}),
    log,
    recent: deps.recent,
  });
}
