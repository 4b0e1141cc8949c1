import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';

/** The four header lines that make a request a WebSocket upgrade (a fresh random key each call). */
export function handshakeLines(): string[] {
  return [
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
  ];
}

/**
 * A complete WebSocket upgrade request head (ending with the blank line): `GET path`, Host, the
 * handshake lines, then `headers` (an array keeps repeated or odd lines as they are).
 */
export function upgradeHead(path: string, headers: Record<string, string> | string[] = [], host = '127.0.0.1'): string {
  const extra = Array.isArray(headers) ? headers : Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return [`GET ${path} HTTP/1.1`, `Host: ${host}`, ...handshakeLines(), ...extra].join('\r\n') + '\r\n\r\n';
}

/** HTTP spoken by hand over a raw TCP socket: requests no client library would send. */

export interface RawHttpResult {
  /** The status of the first response, or undefined when the server closed without answering. */
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** Everything the server wrote. */
  raw: string;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Neither a complete response nor a close within the time limit. */
  timedOut: boolean;
}

/**
 * Sends `chunks` (each written as it comes; a function is called with the socket and may write
 * more) and waits, at most `timeoutMs`, for a complete response (by Content-Length) or a close;
 * with `untilClose`, for the close only.
 */
export function rawHttp(
  port: number,
  chunks: (string | Buffer | ((sock: Socket) => void))[],
  timeoutMs = 5000,
  untilClose = false,
): Promise<RawHttpResult> {
  return new Promise((resolve) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let raw = '';
    let closed = false;
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const sep = raw.indexOf('\r\n\r\n');
      const head = sep === -1 ? raw : raw.slice(0, sep);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: m ? Number(m[1]) : undefined, headers, body: sep === -1 ? '' : raw.slice(sep + 4), raw, closed, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      raw += d;
      const sep = raw.indexOf('\r\n\r\n');
      if (sep === -1) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, sep));
      if (!untilClose && len && raw.length - sep - 4 >= Number(len[1])) finish(false);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      finish(false);
    });
    sock.on('connect', () => {
      for (const c of chunks) {
        if (typeof c === 'function') c(sock);
        else if (!sock.destroyed) sock.write(c);
      }
    });
  });
}
