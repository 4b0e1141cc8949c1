import { afterEach, describe, expect, it } from 'vitest';
import { HubcastError, type AuthForm } from '../../packages/client/src/index.ts';
import { cli, eventually, ManualClock, startServer, type Harness } from '../helpers/server.ts';
import { recordStates } from './helpers/checker.ts';
import { closeHubs, hub, subscribed } from './helpers/hubs.ts';
import { sleep } from './helpers/net.ts';

/**
 * Refusals and what the SDK does about them: a revoked client stops (and says why), an expired token
 * is replaced (register again: `POST /consumers`, or `getToken()`), in every credential form.
 */

const DAY = 86_400_000;
let h: Harness | undefined;
afterEach(async () => {
  await closeHubs();
  await h?.close();
  h = undefined;
});

describe('SDK: revoked → stop', () => {
  it('a live connection closed with 4500: state closed, an error with the close code, no reconnect', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['a.>'] });
    const x = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret, backoff: { initialMs: 20, maxMs: 100 } });
    const states = recordStates(x);
    const errors: HubcastError[] = [];
    x.on('error', (e) => errors.push(e));
    const sub = x.subscribe('a.b');
    const subErrors: HubcastError[] = [];
    sub.on('error', (e) => subErrors.push(e));
    const it = sub[Symbol.asyncIterator]();
    await subscribed(sub);
    expect((await cli(['clients', 'revoke', creds.client_id, '--data-dir', h.dataDir])).code).toBe(0);
    await eventually(() => x.state === 'closed', 5000, 'state closed');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ closeCode: 4500, action: 'stop' });
    expect(subErrors).toHaveLength(1);
    await expect(it.next()).rejects.toMatchObject({ closeCode: 4500 });
    await sleep(500);
    expect(states.filter((s) => s.state === 'connecting')).toHaveLength(1);
    expect(states.at(-1)).toMatchObject({ state: 'closed', info: { code: 4500, action: 'stop' } });
    await expect(x.publish('a.b', 1)).rejects.toMatchObject({ code: 'closed' });
  });

  it('revoked while disconnected: the upgrade gets 401, registering again gets 401 too → stop, not a loop', async () => {
    h = await startServer();
    const creds = await h.createClient({ subscribe: ['a.>'] });
    const token = await h.register(creds);
    expect((await cli(['clients', 'revoke', creds.client_id, '--data-dir', h.dataDir])).code).toBe(0);
    const x = hub({
      url: h.base,
      token,
      clientId: creds.client_id,
      clientSecret: creds.client_secret,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    const states = recordStates(x);
    await expect(x.connect()).rejects.toMatchObject({ code: 'invalid_client', status: 401, action: 'stop' });
    expect(states.map((s) => s.state)).toEqual(['connecting', 'disconnected', 'connecting', 'closed']);
    expect(states[1]!.info).toMatchObject({ status: 401, action: 'register' });
  });
});

describe('SDK: expired token → register again', () => {
  for (const auth of ['header', 'subprotocol', 'ticket'] as AuthForm[]) {
    it(`${auth} form: an expired token is replaced through POST /consumers, then the client connects`, async () => {
      const clock = new ManualClock();
      h = await startServer({}, { clock });
      const creds = await h.createClient({ subscribe: ['a.>'] });
      const expired = await h.register(creds);
      clock.advance(30 * DAY + 1000);
      const x = hub({
        url: h.base,
        auth,
        token: expired,
        clientId: creds.client_id,
        clientSecret: creds.client_secret,
        backoff: { initialMs: 20, maxMs: 100 },
      });
      const states = recordStates(x);
      await x.connect();
      const first = states.find((s) => s.state === 'disconnected')!.info;
      expect(first.action).toBe('register');
      if (auth === 'subprotocol') expect(first.code).toBe(4511);
      else expect(first.status).toBe(401);
      expect(states.map((s) => s.state)).toEqual(['connecting', 'disconnected', 'connecting', 'connected']);
      const sub = x.subscribe('a.b');
      await subscribed(sub);
    });
  }

  it('getToken is called again after the refusal', async () => {
    const clock = new ManualClock();
    h = await startServer({}, { clock });
    const creds = await h.createClient({ subscribe: ['a.>'] });
    const expired = await h.register(creds);
    clock.advance(30 * DAY + 1000);
    const given: string[] = [];
    const x = hub({
      url: h.base,
      getToken: async () => {
        const t = given.length === 0 ? expired : await h!.register(creds);
        given.push(t);
        return t;
      },
      backoff: { initialMs: 20, maxMs: 100 },
    });
    await x.connect();
    expect(given).toHaveLength(2);
    expect(given[1]).not.toBe(expired);
  });

  it('a static token alone cannot be renewed: stop with unauthorized', async () => {
    const clock = new ManualClock();
    h = await startServer({}, { clock });
    const creds = await h.createClient({ subscribe: ['a.>'] });
    const expired = await h.register(creds);
    clock.advance(30 * DAY + 1000);
    const x = hub({ url: h.base, token: expired, backoff: { initialMs: 20, maxMs: 100 } });
    await expect(x.connect()).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect(x.state).toBe('closed');
  });
});

describe('SDK: Retry-After', () => {
  it('a 429 connection_limit (Retry-After: 5) delays the next attempt by at least 5 s', async () => {
    h = await startServer({ limits: { connectionsPerClient: 1 } });
    const creds = await h.createClient({ subscribe: ['a.>'] });
    const first = hub({ url: h.base, clientId: creds.client_id, clientSecret: creds.client_secret });
    await first.connect();
    const second = hub({
      url: h.base,
      clientId: creds.client_id,
      clientSecret: creds.client_secret,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    const states = recordStates(second);
    void second.connect().catch(() => undefined);
    await eventually(() => states.some((s) => s.state === 'disconnected'), 5000, 'the refusal');
    expect(states.find((s) => s.state === 'disconnected')!.info).toMatchObject({ status: 429, action: 'reconnect' });
    expect(states.find((s) => s.state === 'disconnected')!.info.retryInMs).toBeGreaterThanOrEqual(5000);
  });
});
