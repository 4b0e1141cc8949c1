import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { upgradeHead } from './raw-http.ts';

/**
 * A WebSocket spoken by hand over a raw TCP socket, for what a well-behaved client library never
 * sends: bad frames, impossible lengths, a client that never answers the close handshake.
 */

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Parses the (unmasked) server→client frames in `buf`; an incomplete tail is ignored. */
export function parseFrames(buf: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const fin = (buf[i]! & 0x80) !== 0;
    const opcode = buf[i]! & 0x0f;
    let len = buf[i + 1]! & 0x7f;
    let j = i + 2;
    if (len === 126) {
      if (j + 2 > buf.length) break;
      len = buf.readUInt16BE(j);
      j += 2;
    } else if (len === 127) {
      if (j + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(j));
      j += 8;
    }
    if (j + len > buf.length) break;
    out.push({ fin, opcode, payload: buf.subarray(j, j + len) });
    i = j + len;
  }
  return out;
}

/** Close codes of the close frames in `buf`. */
export function closeCodes(buf: Buffer): number[] {
  return parseFrames(buf)
    .filter((f) => f.opcode === 0x8 && f.payload.length >= 2)
    .map((f) => f.payload.readUInt16BE(0));
}

/**
 * A client→server frame. `masked: false` or `rsv` bits make it invalid on purpose; `announce`
 * replaces the length field (the payload sent is still `payload`).
 */
export function clientFrame(
  opcode: number,
  payload: Buffer | string,
  opts: { fin?: boolean; masked?: boolean; rsv?: number; announce?: bigint } = {},
): Buffer {
  const { fin = true, masked = true, rsv = 0 } = opts;
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = opts.announce ?? BigInt(data.length);
  const parts: Buffer[] = [];
  const b0 = (fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0x0f);
  const maskBit = masked ? 0x80 : 0;
  if (len < 126n) parts.push(Buffer.from([b0, maskBit | Number(len)]));
  else if (len < 65536n) {
    const h = Buffer.alloc(4);
    h[0] = b0;
    h[1] = maskBit | 126;
    h.writeUInt16BE(Number(len), 2);
    parts.push(h);
  } else {
    const h = Buffer.alloc(10);
    h[0] = b0;
    h[1] = maskBit | 127;
    h.writeBigUInt64BE(len, 2);
    parts.push(h);
  }
  if (masked) {
    const mask = randomBytes(4);
    const body = Buffer.from(data);
    for (let k = 0; k < body.length; k++) body[k]! ^= mask[k & 3]!;
    parts.push(mask, body);
  } else parts.push(data);
  return Buffer.concat(parts);
}

export interface RawWs {
  sock: Socket;
  /** The 101 response head. */
  head: string;
  /** Bytes received after the head so far. */
  received(): Buffer;
  /** Resolves when the server has closed or destroyed the TCP connection (false on timeout). */
  waitClosed(timeoutMs?: number): Promise<boolean>;
  /** Waits (bounded) until a close frame has arrived; returns its code, or undefined. */
  waitCloseCode(timeoutMs?: number): Promise<number | undefined>;
  /** Waits (bounded) until a text frame satisfies `pred`. */
  waitText(pred: (text: string) => boolean, timeoutMs?: number): Promise<string | undefined>;
  destroy(): void;
}

/**
 * Completes a WebSocket upgrade on a raw socket (rejects unless the answer is 101) and then does
 * nothing on its own: it never answers pings or close frames.
 */
export function rawWebSocket(
  port: number,
  headers: Record<string, string>,
  opts: { path?: string; timeoutMs?: number } = {},
): Promise<RawWs> {
  const { path = '/ws', timeoutMs = 3000 } = opts;
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let head: string | undefined;
    let closed = false;
    const watchers = new Set<() => void>();
    const notify = () => {
      for (const w of [...watchers]) w();
    };
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no 101 within ${timeoutMs} ms: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
    }, timeoutMs);
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      notify();
      if (head === undefined) {
        clearTimeout(timer);
        reject(new Error(`closed before 101: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
      }
    });
    const until = <T>(get: () => T | undefined, ms: number): Promise<T | undefined> =>
      new Promise((res) => {
        const check = () => {
          const v = get();
          if (v !== undefined || closed) done(v);
        };
        const t = setTimeout(() => done(get()), ms);
        const done = (v: T | undefined) => {
          clearTimeout(t);
          watchers.delete(check);
          res(v);
        };
        watchers.add(check);
        check();
      });
    const raw: RawWs = {
      sock,
      get head() {
        return head ?? '';
      },
      received: () => buf,
      waitClosed: (ms = 5000) => until(() => (closed ? true : undefined), ms).then((v) => v === true),
      waitCloseCode: (ms = 5000) => until(() => closeCodes(buf)[0], ms),
      waitText: (pred, ms = 3000) =>
        until(
          () =>
            parseFrames(buf)
              .filter((f) => f.opcode === 0x1)
              .map((f) => f.payload.toString('utf8'))
              .find(pred),
          ms,
        ),
      destroy: () => sock.destroy(),
    };
    sock.on('data', (d: Buffer) => {
      if (head === undefined) {
        const all = Buffer.concat([buf, d]);
        const sep = all.indexOf('\r\n\r\n');
        if (sep === -1) {
          buf = all;
          return;
        }
        head = all.subarray(0, sep).toString('latin1');
        buf = all.subarray(sep + 4);
        clearTimeout(timer);
        if (!/^HTTP\/1\.1 101 /.test(head)) {
          sock.destroy();
          return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]} ${buf.toString()}`));
        }
        resolve(raw);
      } else buf = Buffer.concat([buf, d]);
      notify();
    });
    sock.on('connect', () => {
      sock.write(upgradeHead(path, headers, `127.0.0.1:${port}`));
    });
  });
}
