import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, type ErrorCode } from '../core/errors.ts';

const FLUSH_WAIT_MS = 2000;

/**
 * Answers an upgrade request with a plain HTTP error (no WebSocket is created) and closes the socket.
 * Also used for requests Node's HTTP parser refused (src/http/app.ts), which have no response object.
 */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  code: ErrorCode,
  message?: string,
  headers: Record<string, string> = {},
): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const body = errorBody(code, message);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
  socket.once('finish', () => socket.destroy());
  // A peer that never reads (or a TLS socket whose handshake never completed) would hold the socket
  // open forever waiting for 'finish': bounded.
  const drop = setTimeout(() => socket.destroy(), FLUSH_WAIT_MS);
  drop.unref();
  socket.once('close', () => clearTimeout(drop));
}
