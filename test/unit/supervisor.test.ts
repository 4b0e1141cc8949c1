import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AlertEvent, Alerts } from '../../src/alerts/alerts.ts';
import { FatalSourceError, type Connector, type ConnectorContext } from '../../src/connectors/connector.ts';
import { scrubUrls, Supervisor } from '../../src/connectors/supervisor.ts';
import { eventually } from '../helpers/server.ts';

/** A real Alerts implementation that keeps what was raised. */
class RecordingAlerts implements Alerts {
  readonly events: AlertEvent[] = [];
  raise(e: AlertEvent) {
    this.events.push(e);
  }
  async start() {}
  async close() {}
}

/** A connector whose source is down for the first `failures` runs, then up until stopped. */
class FlakyConnector implements Connector {
  readonly name = 'flaky';
  readonly type = 'test';
  runs = 0;
  constructor(
    private failures: number,
    private fatal = false,
  ) {}
  async run(ctx: ConnectorContext): Promise<void> {
    this.runs++;
    if (this.fatal) throw new FatalSourceError('password authentication failed for postgres://app:hunter2@db/x');
    if (this.runs <= this.failures) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    ctx.connected();
    await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
  }
}

const state = { get: () => undefined, set: () => {}, delete: () => {} };
const supervise = (c: Connector, alerts: Alerts, attempts = 3) =>
  new Supervisor(c, {
    retry: { attempts, initialMs: 5, maxMs: 20 },
    alerts,
    log: pino({ level: 'silent' }),
    ctx: { emit: async () => {}, state, log: pino({ level: 'silent' }) },
  });

describe('Supervisor', () => {
  it('retries with backoff, alerts source_unreachable once after the attempts, then source_recovered', async () => {
    const alerts = new RecordingAlerts();
    const c = new FlakyConnector(6);
    const s = supervise(c, alerts, 3);
    s.start();
    await eventually(() => s.status === 'running', 3000, 'running');
    expect(c.runs).toBe(7);
    expect(alerts.events.map((e) => e.kind)).toEqual(['source_unreachable', 'source_recovered']);
    expect(alerts.events[0]).toMatchObject({ connector: 'flaky', detail: expect.stringContaining('ECONNREFUSED') });
    expect(s.attempts).toBe(0);
    await s.stop();
    expect(s.status).toBe('stopped');
  });

  it('no alert when the source comes back within the attempts', async () => {
    const alerts = new RecordingAlerts();
    const s = supervise(new FlakyConnector(2), alerts, 3);
    s.start();
    await eventually(() => s.status === 'running', 3000, 'running');
    expect(alerts.events).toEqual([]);
    await s.stop();
  });

  it('a FatalSourceError stops the connector as failed, alerted, with credentials hidden', async () => {
    const alerts = new RecordingAlerts();
    const c = new FlakyConnector(0, true);
    const s = supervise(c, alerts);
    s.start();
    await eventually(() => s.status === 'failed', 3000, 'failed');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.runs).toBe(1);
    expect(alerts.events).toEqual([expect.objectContaining({ kind: 'source_failed', connector: 'flaky' })]);
    expect(s.lastError).toContain('postgres://app:***@db/x');
    expect(JSON.stringify(alerts.events)).not.toContain('hunter2');
    await s.stop();
  });

  it('scrubUrls hides passwords in any URL', () => {
    expect(scrubUrls('amqp://guest:guest@127.0.0.1:5672 and mqtt://u:p@h')).toBe('amqp://guest:***@127.0.0.1:5672 and mqtt://u:***@h');
  });
});
