import { randomBytes } from 'node:crypto';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { eventually, startServer, type Harness } from '../helpers/server.ts';
import { SmtpSink, type ReceivedMail } from '../helpers/smtp-sink.ts';
import { tryConnect } from '../helpers/upgrade.ts';
import { WebhookSink } from '../helpers/webhook-sink.ts';
import { upgradeHead } from '../helpers/raw-http.ts';

/** Fast retries so that outages in these tests last a fraction of a second. */
const RETRY = { initialMs: 100, maxMs: 400 };

/**
 * One upgrade attempt with a bogus (well-formed, unknown) token from `localAddress` on a raw socket;
 * resolves with the HTTP status. Bounded.
 */
function bogusUpgrade(port: number, localAddress: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    let head = '';
    const timer = setTimeout(() => finish(new Error('no answer to a bogus upgrade within 5 s')), 5000);
    const finish = (err?: Error, status?: number) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(status!);
    };
    s.setEncoding('latin1');
    s.on('connect', () => s.write(upgradeHead('/ws', { Authorization: `Bearer ${token}` })));
    s.on('data', (d: string) => {
      head += d;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) finish(undefined, Number(m[1]));
    });
    s.on('error', (err) => finish(err));
    s.on('close', () => finish(new Error(`closed without an answer: ${JSON.stringify(head.slice(0, 100))}`)));
  });
}

/** Runs `n` jobs with at most `concurrency` at a time. */
async function pool<T>(n: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await job(i);
      }
    }),
  );
  return out;
}

/** Waits (bounded) until the sink holds at least one mail matching `pred`; returns those mails. */
async function mailsWhere(sink: SmtpSink, pred: (m: ReceivedMail) => boolean, what: string, timeoutMs = 8000): Promise<ReceivedMail[]> {
  let found: ReceivedMail[] = [];
  await eventually(() => (found = sink.mails.filter(pred)).length > 0, timeoutMs, what);
  return found;
}

const kindOf = (m: ReceivedMail): string | undefined => m.headers.get('x-hubcast-alert') as string | undefined;

/** Every way a secret could be in a mail: raw on the wire (any encoding is decoded by the parser too). */
function expectNoSecret(mails: ReceivedMail[], secrets: string[]): void {
  for (const m of mails) {
    const all = [m.raw, m.subject, m.text].join('\n');
    for (const s of secrets) if (all.includes(s)) throw new Error(`a secret (${s.slice(0, 4)}…) is in a mail: ${m.subject}`);
  }
}

describe('alerts to DevOps', () => {
  let h: Harness | undefined;
  let smtp: SmtpSink | undefined;
  let hook: WebhookSink | undefined;
  let hang: { server: Server; sockets: Set<Socket> } | undefined;
  let faulty: FaultyStore | undefined;

  afterEach(async () => {
    faulty?.fail.clear();
    faulty?.throwing.clear();
    faulty = undefined;
    await h?.close();
    h = undefined;
    await smtp?.stop();
    smtp = undefined;
    await hook?.stop();
    hook = undefined;
    if (hang) {
      for (const s of hang.sockets) s.destroy();
      await new Promise((r) => hang!.server.close(r));
      hang = undefined;
    }
  });

  function emailConfig(extra: ConfigInput['alerts'] = {}): ConfigInput {
    return { alerts: { groupWaitS: 1, retry: RETRY, email: { smtpUrl: smtp!.url, to: ['devops@example.test'] }, ...extra } };
  }

  /** A consumer that sends a frame it may not send; resolves with its client_id, token and secret once closed 4501. */
  async function forbiddenSend(): Promise<{ clientId: string; token: string; secret: string }> {
    const creds = await h!.createClient({ subscribe: ['t.>'] });
    const token = await h!.register(creds);
    const c = await h!.connect(token);
    c.send('hello');
    expect((await c.closed).code).toBe(4501);
    return { clientId: creds.client_id, token, secret: creds.client_secret };
  }

  it('a flood of 2,000 bogus tokens from 3 addresses gives exactly one invalid_token e-mail, with count and sources, no token', async () => {
    smtp = await SmtpSink.start();
    // groupWaitS 8: the whole flood falls into the group's first window, even on a loaded machine.
    h = await startServer(emailConfig({ groupWaitS: 8 }));
    const sources = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    const tokens = Array.from({ length: 2000 }, () => randomBytes(32).toString('base64url'));
    const statuses = await pool(tokens.length, 50, (i) => bogusUpgrade(h!.port, sources[i % 3]!, tokens[i]!));
    // 401 until an address spends its failure budget, then 429: both are invalid_token events.
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);

    const [mail] = await mailsWhere(smtp, () => true, 'the invalid_token e-mail', 20_000);
    expect(kindOf(mail!)).toBe('invalid_token');
    expect(mail!.to).toEqual(['devops@example.test']);
    const count = Number(/^\[hubcast\] invalid_token: (\d+) in \d+ s \(3 sources\)$/.exec(mail!.subject)?.[1]);
    expect(count).toBeGreaterThanOrEqual(2000);
    expect(mail!.text).toContain(`Events:    ${count} in`);
    for (const ip of sources) expect(mail!.text).toMatch(new RegExp(`^  ${ip.replace(/\./g, '\\.')}  \\d+$`, 'm'));
    expectNoSecret(smtp.mails, tokens);
    // Per-address groups would all have gone out at the same tick: a moment later, still one mail.
    await new Promise((r) => setTimeout(r, 1000));
    expect(smtp.mails).toHaveLength(1);
    expectNoSecret(smtp.mails, [h.ingestKey]);
  }, 40_000);

  it('a forbidden send gives a consumer_sent_message e-mail naming the client_id, without token or secret', async () => {
    smtp = await SmtpSink.start();
    h = await startServer(emailConfig());
    const { clientId, token, secret } = await forbiddenSend();
    const mails = await mailsWhere(smtp, (m) => m.text.includes(clientId), 'the e-mail');
    expect(mails).toHaveLength(1);
    expect(kindOf(mails[0]!)).toBe('consumer_sent_message');
    expect(mails[0]!.subject).toBe(`[hubcast] consumer_sent_message: client ${clientId}: 1 in 0 s (1 source)`);
    expect(mails[0]!.text).toContain(`Client:    ${clientId}`);
    expectNoSecret(smtp.mails, [token, secret, h.ingestKey, 'hello']);
    // The log carries the digest too (always-on channel).
    expect(h.logs.some((l) => l.msg === `alert: consumer_sent_message: client ${clientId}: 1 in 0 s (1 source)` && l.level === 40)).toBe(
      true,
    );
  });

  it('SMTP down: the alert is spooled, retried, and delivered once SMTP is back — also across a Hubcast restart', async () => {
    smtp = await SmtpSink.start();
    h = await startServer(emailConfig());
    await smtp.stop();
    const failures = () => h!.logs.filter((l) => l.msg === 'alert delivery failed; will retry');
    const first = await forbiddenSend();
    await eventually(() => failures().length > 0, 8000, 'a failed attempt');
    await smtp.start();
    await mailsWhere(smtp, (m) => m.text.includes(first.clientId), 'the e-mail after SMTP came back');

    // Down again; this time Hubcast restarts before SMTP is back: the spool file carries the alert over.
    await smtp.stop();
    const failuresBefore = failures().length;
    const second = await forbiddenSend();
    await eventually(() => failures().length > failuresBefore, 8000, 'a failed attempt');
    await h.restart();
    const db = new Database(join(h.dataDir, 'alerts.db'), { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM alerts').get() as { n: number }).n).toBe(1);
    db.close();
    await smtp.start();
    await mailsWhere(smtp, (m) => m.text.includes(second.clientId), 'the spooled e-mail after the restart');
    expect(smtp.mails).toHaveLength(2);
    expectNoSecret(smtp.mails, [first.token, first.secret, second.token, second.secret]);
    // Failures are logged at warn with the channel and the attempt number.
    expect(failures().every((l) => l.level === 40 && l.channel === 'email' && typeof l.attempt === 'number')).toBe(true);
  });

  it('the webhook receives the JSON digest; a receiver answering 500 then 200 gets it retried and delivered once', async () => {
    hook = await WebhookSink.start();
    h = await startServer({ alerts: { groupWaitS: 1, retry: RETRY, webhook: { url: hook.url } } });
    hook.failNext(2);
    const { clientId, token, secret } = await forbiddenSend();
    await eventually(() => hook!.delivered.length === 1, 8000, 'the webhook delivery');
    expect(hook.posts.map((p) => p.status)).toEqual([500, 500, 200]);
    const ids = new Set(hook.posts.map((p) => p.headers['idempotency-key']));
    expect(ids.size).toBe(1);
    const body = hook.delivered[0]!.body;
    expect(body).toMatchObject({
      kind: 'consumer_sent_message',
      clientId,
      count: 1,
      seq: 1,
      sources: 1,
      topIps: [{ ip: '127.0.0.1', count: 1 }],
      details: [expect.any(String)],
    });
    expect(body.id).toBe([...ids][0]);
    expect(Date.parse(body.firstAt)).toBeGreaterThan(0);
    expect(hook.delivered[0]!.headers['content-type']).toBe('application/json');
    const text = JSON.stringify(hook.posts.map((p) => p.body));
    for (const s of [token, secret]) expect(text).not.toContain(s);
    // No e-mail channel configured: no SMTP anywhere, and nothing else was posted.
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.posts).toHaveLength(3);
  });

  it('three duplicate connections for one token give a duplicate_connection e-mail naming the client', async () => {
    smtp = await SmtpSink.start();
    h = await startServer(emailConfig());
    const creds = await h.createClient();
    const token = await h.register(creds);
    await h.connect(token);
    for (let i = 0; i < 3; i++) {
      const dup = await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${token}` } });
      expect(dup.status).toBe(409);
    }
    const [mail] = await mailsWhere(smtp, (m) => kindOf(m) === 'duplicate_connection', 'the duplicate_connection e-mail');
    expect(mail!.subject).toContain(`client ${creds.client_id}`);
    expect(mail!.text).toMatch(/duplicate connections for one token/);
    expectNoSecret(smtp.mails, [token, creds.client_secret]);
  });

  it('store failures give store_unavailable and internal_error e-mails; ingest answers 503, live connections keep receiving', async () => {
    smtp = await SmtpSink.start();
    h = await startServer(emailConfig(), { wrapStore: (s) => (faulty = new FaultyStore(s)).store });
    const c = await h.connect(await h.register(await h.createClient()));
    await c.subscribe('t.live');

    faulty!.fail.add('append');
    expect((await h.ingest('t.live', 1)).status).toBe(503);
    faulty!.throwing.add('touchToken');
    const b = await tryConnect(`${h.wsBase}/ws`, { headers: { authorization: `Bearer ${await h.register(await h.createClient())}` } });
    expect(b.status).toBe(101);
    expect((await b.client.closed).code).toBe(1011);
    faulty!.fail.clear();
    faulty!.throwing.clear();

    expect((await h.ingest('t.live', 2)).status).toBe(202);
    expect(await c.next('message')).toMatchObject({ data: 2 });

    const [store] = await mailsWhere(smtp, (m) => kindOf(m) === 'store_unavailable', 'the store_unavailable e-mail');
    expect(store!.text).toMatch(/append: SQLITE_FULL/);
    const [internal] = await mailsWhere(smtp, (m) => kindOf(m) === 'internal_error', 'the internal_error e-mail');
    expect(internal!.text).toMatch(/connection handler, ref e_/);
  });

  it('a hanging SMTP server does not slow message delivery; shutdown stays bounded', async () => {
    const sockets = new Set<Socket>();
    const server = createTcpServer((s) => {
      sockets.add(s); // accept, never answer
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hang = { server, sockets };
    const port = (server.address() as { port: number }).port;
    h = await startServer({
      alerts: { groupWaitS: 0, retry: RETRY, email: { smtpUrl: `smtp://127.0.0.1:${port}`, to: ['devops@example.test'] } },
    });
    const c = await h.connect(await h.register(await h.createClient()));
    await c.subscribe('t.flow');
    await forbiddenSend();
    await eventually(() => sockets.size > 0, 5000, 'the mailer to connect to the hanging server');
    for (let i = 0; i < 20; i++) {
      const r = await h.ingest('t.flow', i);
      expect(r.status).toBe(202);
      expect(await c.next('message')).toMatchObject({ data: i });
    }
    // Shutdown gives up on the stalled send (bounded) and keeps the digest spooled for the next start.
    const dataDir = h.dataDir;
    await h.server.close();
    const db = new Database(join(dataDir, 'alerts.db'), { readonly: true });
    expect((db.prepare("SELECT count(*) AS n FROM alerts WHERE channel = 'email'").get() as { n: number }).n).toBe(1);
    db.close();
  });
});
