import { connect as netConnect } from 'node:net';
import type { Attempt } from './upgrade.ts';
import { upgradeHead } from './raw-http.ts';

/**
 * Refusals told to browser forms (`?ticket=`, the `hubcast.bearer.` subprotocol): the handshake
 * completes (101) and the server closes at once with a close code whose reason is the error code.
 */

/** The close code and reason of an attempt that was answered 101 (bounded); fails on anything else. */
export async function closeOf(a: Attempt, timeoutMs = 3000): Promise<{ code: number; reason: string; frames: number }> {
  if (a.status !== 101) throw new Error(`expected 101 then a close, got HTTP ${a.status}: ${'body' in a ? a.body : ''}`);
  const closed = await Promise.race([
    a.client.closed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms`)), timeoutMs)),
  ]);
  return { ...closed, frames: a.client.frames.length };
}

export interface RawRefusal {
  /** The HTTP status of the answer (101 for a handshake-then-close). */
  status: number;
  /** For a 101: the close code and reason of the first frame, which must be a close frame. */
  close?: { code: number; reason: string };
  /** For an HTTP refusal: the parsed JSON body. */
  json?: { error: { code: string; message: string } };
  raw: string;
}

/**
 * A raw upgrade request (latin1, so frame bytes survive) read until the socket closes or, for a
 * 101, until the first frame is complete; then the socket is destroyed. Bounded by `timeoutMs`.
 */
export function rawRefusal(port: number, path: string, headers: Record<string, string>, timeoutMs = 3000): Promise<RawRefusal> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let raw = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const sep = raw.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      if (!m || sep === -1) return reject(new Error(`not an HTTP answer: ${JSON.stringify(raw.slice(0, 300))}`));
      const status = Number(m[1]);
      const rest = Buffer.from(raw.slice(sep + 4), 'latin1');
      if (status !== 101) return resolve({ status, json: JSON.parse(rest.toString('utf8')) as RawRefusal['json'], raw });
      const frame = closeFrame(rest);
      if (!frame) return reject(new Error(`101 without a close frame: ${rest.toString('hex')}`));
      resolve({ status, close: frame, raw });
    };
    const timer = setTimeout(() => reject(new Error(`no complete answer within ${timeoutMs} ms: ${JSON.stringify(raw)}`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      raw += d;
      const sep = raw.indexOf('\r\n\r\n');
      if (sep !== -1 && raw.startsWith('HTTP/1.1 101') && closeFrame(Buffer.from(raw.slice(sep + 4), 'latin1'))) finish();
    });
    sock.on('error', () => {});
    sock.on('close', finish);
    sock.on('connect', () => {
      sock.write(upgradeHead(path, headers));
    });
  });
}

/** A complete unmasked close frame at the start of `buf` (short payload), or undefined. */
function closeFrame(buf: Buffer): { code: number; reason: string } | undefined {
  if (buf.length < 2 || buf[0] !== 0x88) return undefined;
  const len = buf[1]! & 0x7f;
  if (len > 125 || buf.length < 2 + len) return undefined;
  return { code: len >= 2 ? buf.readUInt16BE(2) : 1005, reason: buf.subarray(4, 2 + len).toString('utf8') };
}
