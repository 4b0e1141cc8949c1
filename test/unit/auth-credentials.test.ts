import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { header, parseBasic, readBearer, readClientCredentials, readUpgradeCredentials, SUBPROTOCOL } from '../../src/auth/credentials.ts';
import { clientIdField } from '../../src/auth/failures.ts';
import { SUBPROTOCOL as GATEWAY_SUBPROTOCOL } from '../../src/gateway/credentials.ts';

/** The one credential parser of every entrance, as a table of inputs. */

const T = 'n5fDFl144w5n-srAyLTZ5NUq__VaIARs5ePkblLu8_A';
const ID = 'c_JIQIv7Ag4A6O86Gt';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('header()', () => {
  it('takes the first value of a repeated header, undefined when absent', () => {
    expect(header({ a: 'x' }, 'a')).toBe('x');
    expect(header({ 'set-cookie': ['1', '2'] }, 'set-cookie')).toBe('1');
    expect(header({}, 'a')).toBeUndefined();
  });
});

describe('readBearer()', () => {
  const table: [string, IncomingHttpHeaders, ReturnType<typeof readBearer>][] = [
    ['no header', {}, { kind: 'none' }],
    ['Bearer token', { authorization: `Bearer ${T}` }, { kind: 'bearer', token: T }],
    ['scheme in any case', { authorization: `bEaReR ${T}` }, { kind: 'bearer', token: T }],
    ['several spaces, surrounding blanks', { authorization: `  Bearer   ${T}  ` }, { kind: 'bearer', token: T }],
    ['any non-blank value (shape is checked later)', { authorization: 'Bearer abc' }, { kind: 'bearer', token: 'abc' }],
    ['empty', { authorization: '' }, { kind: 'malformed' }],
    ['scheme only', { authorization: 'Bearer' }, { kind: 'malformed' }],
    ['two words', { authorization: 'Bearer a b' }, { kind: 'malformed' }],
    ['no space', { authorization: `Bearer${T}` }, { kind: 'malformed' }],
    ['Basic', { authorization: `Basic ${b64('a:b')}` }, { kind: 'malformed' }],
    ['tab instead of space', { authorization: `Bearer\t${T}` }, { kind: 'malformed' }],
  ];
  it.each(table)('%s', (_name, headers, expected) => {
    expect(readBearer(headers)).toEqual(expected);
  });
});

describe('parseBasic()', () => {
  const table: [string, string, { id: string; secret: string } | undefined][] = [
    ['id:secret', `Basic ${b64(`${ID}:${T}`)}`, { id: ID, secret: T }],
    ['scheme in any case', `basic ${b64(`${ID}:${T}`)}`, { id: ID, secret: T }],
    ['a colon in the secret belongs to the secret', `Basic ${b64('id:a:b')}`, { id: 'id', secret: 'a:b' }],
    ['no colon', `Basic ${b64('idsecret')}`, undefined],
    ['empty id', `Basic ${b64(':secret')}`, undefined],
    ['empty secret', `Basic ${b64('id:')}`, undefined],
    ['over-long secret', `Basic ${b64(`id:${'x'.repeat(257)}`)}`, undefined],
    ['not base64', 'Basic !!!', undefined],
    ['Bearer', `Bearer ${T}`, undefined],
  ];
  it.each(table)('%s', (_name, value, expected) => {
    expect(parseBasic(value)).toEqual(expected);
  });
});

describe('readClientCredentials()', () => {
  const body = (v: unknown) => Buffer.from(JSON.stringify(v));
  const json = { 'content-type': 'application/json' };
  const table: [string, IncomingHttpHeaders, Buffer | undefined, { id: string; secret: string } | 'bad'][] = [
    ['JSON body', json, body({ client_id: ID, client_secret: T }), { id: ID, secret: T }],
    [
      'JSON with charset',
      { 'content-type': 'application/json; charset=utf-8' },
      body({ client_id: ID, client_secret: T }),
      { id: ID, secret: T },
    ],
    [
      'JSON body wins over headers',
      { ...json, client_id: 'h', client_secret: 's' },
      body({ client_id: ID, client_secret: T }),
      { id: ID, secret: T },
    ],
    ['JSON without the fields falls through to headers', { ...json, client_id: ID, client_secret: T }, body({}), { id: ID, secret: T }],
    ['JSON with one field', json, body({ client_id: ID }), 'bad'],
    ['JSON with a number', json, body({ client_id: ID, client_secret: 5 }), 'bad'],
    ['JSON with an empty value', json, body({ client_id: '', client_secret: T }), 'bad'],
    ['body not JSON', json, Buffer.from('{'), 'bad'],
    ['body of another type', { 'content-type': 'text/plain' }, Buffer.from('x'), 'bad'],
    ['header pair', { client_id: ID, client_secret: T }, undefined, { id: ID, secret: T }],
    [
      'header pair wins over Basic',
      { client_id: ID, client_secret: T, authorization: `Basic ${b64('x:y')}` },
      undefined,
      { id: ID, secret: T },
    ],
    ['one header of the pair', { client_id: ID }, undefined, 'bad'],
    ['over-long header value', { client_id: ID, client_secret: 'x'.repeat(257) }, undefined, 'bad'],
    ['Basic', { authorization: `Basic ${b64(`${ID}:${T}`)}` }, undefined, { id: ID, secret: T }],
    ['malformed Basic', { authorization: 'Basic' }, undefined, 'bad'],
    ['Bearer is not client credentials', { authorization: `Bearer ${T}` }, undefined, 'bad'],
    ['nothing', {}, undefined, 'bad'],
    ['empty body, nothing else', json, Buffer.alloc(0), 'bad'],
  ];
  it.each(table)('%s', (_name, headers, b, expected) => {
    const r = readClientCredentials(headers, b);
    if (expected === 'bad') {
      expect(r.ok).toBe(false);
      expect(!r.ok && r.message.length).toBeGreaterThan(0);
    } else expect(r).toEqual({ ok: true, ...expected });
  });
});

describe('readUpgradeCredentials()', () => {
  const q = (s = '') => new URLSearchParams(s);
  const table: [string, IncomingHttpHeaders, string, ReturnType<typeof readUpgradeCredentials>][] = [
    ['Bearer', { authorization: `Bearer ${T}` }, '', { kind: 'token', token: T }],
    ['Bearer wins over everything', { authorization: `Bearer ${T}`, token: 'x', client_id: 'y' }, 'ticket=z', { kind: 'token', token: T }],
    ['malformed Authorization: nothing else looked at', { authorization: 'Basic x', token: T, client_id: ID }, '', { kind: 'malformed' }],
    ['header pair', { client_id: ID, token: T }, '', { kind: 'token', token: T, clientId: ID }],
    ['token header alone', { token: T }, '', { kind: 'malformed' }],
    ['client_id header alone', { client_id: ID }, '', { kind: 'malformed' }],
    [
      'subprotocol',
      { 'sec-websocket-protocol': `${SUBPROTOCOL}, hubcast.bearer.${T}` },
      '',
      { kind: 'token', token: T, subprotocol: true },
    ],
    [
      'subprotocol, other order and spacing',
      { 'sec-websocket-protocol': `hubcast.bearer.${T} ,${SUBPROTOCOL}` },
      '',
      { kind: 'token', token: T, subprotocol: true },
    ],
    [
      'subprotocol without hubcast.v1',
      { 'sec-websocket-protocol': `hubcast.bearer.${T}` },
      '',
      { kind: 'bad_request', message: expect.any(String) as string },
    ],
    ['hubcast.v1 alone then a ticket', { 'sec-websocket-protocol': SUBPROTOCOL }, 'ticket=abc', { kind: 'ticket', ticket: 'abc' }],
    ['ticket', {}, `ticket=${T}`, { kind: 'ticket', ticket: T }],
    ['empty ticket', {}, 'ticket=', { kind: 'ticket', ticket: '' }],
    ['nothing', {}, '', { kind: 'none' }],
  ];
  it.each(table)('%s', (_name, headers, query, expected) => {
    expect(readUpgradeCredentials(headers, q(query))).toEqual(expected);
  });

  it('the gateway still exports the subprotocol', () => {
    expect(GATEWAY_SUBPROTOCOL).toBe('hubcast.v1');
  });
});

describe('clientIdField()', () => {
  it('logs a value shaped like a client id, and only a hash prefix of anything else', () => {
    expect(clientIdField(ID)).toEqual({ client_id: ID });
    for (const v of [T, 'c_short', `${ID}x`, 'hello', ' c_JIQIv7Ag4A6O86Gt']) {
      const f = clientIdField(v);
      expect(f).not.toHaveProperty('client_id');
      expect(f).toEqual({ client_id_sha256: expect.stringMatching(/^[0-9a-f]{12}$/) as string });
    }
  });
});
