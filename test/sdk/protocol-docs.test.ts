import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, closeAction, CloseCode, ERROR_CODES, REFUSAL_CLOSE, statusAction } from '../../packages/client/src/protocol.ts';
import { ERRORS } from '../../src/core/errors.ts';

/**
 * The protocol module is the code's copy of docs/websocket.md: its close-code table (codes, meanings,
 * what a client should do), the browser refusal codes and the error codes the docs name must agree.
 */

const doc = readFileSync(new URL('../../docs/websocket.md', import.meta.url), 'utf8');

/** The rows of the first table after `heading`, as trimmed cells. */
function table(heading: string): string[][] {
  const at = doc.indexOf(heading);
  expect(at, heading).toBeGreaterThan(-1);
  const lines = doc.slice(at).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows;
}

describe('protocol.ts against docs/websocket.md', () => {
  it('close codes: the same codes, meanings and actions as the "Close codes" table', () => {
    const rows = table('## Close codes');
    expect(rows.map((r) => Number(r[0])).sort()).toEqual(Object.keys(CLOSE_CODES).map(Number).sort());
    for (const [code, meaning, , should] of rows) {
      const entry = CLOSE_CODES[Number(code) as keyof typeof CLOSE_CODES];
      expect(entry.name, `meaning of ${code}`).toBe(meaning);
      const s = should!.toLowerCase();
      const expected = s.includes('new ticket or token')
        ? 'register'
        : s.includes('do not reconnect automatically') || s.startsWith('fix the client')
          ? 'stop'
          : 'reconnect';
      if (s !== '—') expect(s, `${code}`).toMatch(/reconnect|retry|fix the client|new ticket/);
      expect(entry.action, `action for ${code} ("${should}")`).toBe(expected);
      expect(closeAction(Number(code))).toBe(expected);
    }
    // Undocumented: 4500–4999 stop, anything else reconnects.
    expect(closeAction(4999)).toBe('stop');
    expect(closeAction(4004)).toBe('reconnect');
  });

  it('every close code the server sends is in the table', () => {
    for (const code of Object.values(CloseCode)) expect(Object.keys(CLOSE_CODES)).toContain(String(code));
  });

  it('refusals for browsers: the same close code and reason per refusal', () => {
    const rows = table('## Refusals for browsers');
    const documented: Record<string, number> = {};
    for (const r of rows) {
      const m = /\*\*(\d+)\*\* `([a-z_]+)`/.exec(r[2]!);
      expect(m, r[2]).not.toBeNull();
      documented[m![2]!] = Number(m![1]);
    }
    expect(documented).toEqual(REFUSAL_CLOSE);
    for (const code of Object.values(REFUSAL_CLOSE)) expect(CLOSE_CODES[code]).toBeDefined();
  });

  it('the HTTP statuses of refused upgrades map like their browser close codes', () => {
    expect(statusAction(401)).toBe(closeAction(REFUSAL_CLOSE.unauthorized));
    expect(statusAction(403)).toBe(closeAction(REFUSAL_CLOSE.origin_not_allowed));
    expect(statusAction(409)).toBe(closeAction(REFUSAL_CLOSE.duplicate_connection));
    expect(statusAction(429)).toBe(closeAction(REFUSAL_CLOSE.rate_limited));
    expect(statusAction(503)).toBe(closeAction(REFUSAL_CLOSE.unavailable));
  });

  it('error codes: every code the docs name is in ERROR_CODES, which is exactly the server registry', () => {
    const named = new Set<string>();
    for (const m of doc.matchAll(/`error` `([a-z_]+)`/g)) named.add(m[1]!);
    for (const r of table('#### subscribe\n')) named.add(r[0]!.replace(/`/g, ''));
    for (const r of table('## Refusals for browsers')) named.add(/`([a-z_]+)`/.exec(r[2]!)![1]!);
    expect(named.size).toBeGreaterThan(10);
    for (const code of named) expect(ERROR_CODES, code).toContain(code);
    expect([...ERROR_CODES].sort()).toEqual(Object.keys(ERRORS).sort());
  });
});
