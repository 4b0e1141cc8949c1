import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * The one WebSocket client of the comparison scenarios (fanout, latency, topics): every contender's
 * consumers and WebSocket publishers use it, so the cost on the load side is the same whoever serves.
 * Deliberately lean: a raw `net.Socket`, a hand-written upgrade request, a minimal parser for the
 * server's unmasked frames (fragments, ping → pong, close), masked client frames. No extensions are
 * offered (so never permessage-deflate), no UTF-8 validation, and a message is handed over as a view
 * into the received chunk: copy it to keep it past the callback.
 */

export interface LeanWsOptions {
  host: string;
  port: number;
  /** Request path with query (`/ws`, `/socket.io/?EIO=4&transport=websocket`). */
  path: string;
  /** Extra request headers (`authorization`). */
  headers?: Record<string, string>;
  /** `Sec-WebSocket-Protocol` values to offer (`mqtt`). */
  protocols?: string[];
  /** Source address (127.0.0.x) when one address runs out of ephemeral ports. */
  localAddress?: string;
  /** The upgrade must complete within this (default 10 s). */
  timeoutMs?: number;
  /**
   * A complete message (fragments joined). `data` is only valid during the call. `ws` is given because
   * frames that came with the 101 answer are handed over before `connect()` resolves.
   */
  onMessage: (data: Buffer, binary: boolean, ws: LeanWs) => void;
  /** The connection ended: `code` from the server's close frame, 1006 without one. Called once. */
  onClose?: (code: number, reason: string) => void;
}

/** Thrown when the server answers the upgrade with something other than 101. */
export class UpgradeError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`upgrade refused: HTTP ${status}${body ? ` ${body.slice(0, 200)}` : ''}`);
    this.status = status;
  }
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const EMPTY = Buffer.alloc(0);
const MASK = new Uint8Array(4);

export class LeanWs {
  readonly socket: Socket;
  #onMessage: (data: Buffer, binary: boolean, ws: LeanWs) => void;
  #onClose: ((code: number, reason: string) => void) | undefined;
  /** Bytes of an incomplete frame carried over to the next chunk. */
  #rest: Buffer | null = null;
  /** Fragments of a message not finished yet. */
  #frags: Buffer[] | null = null;
  #fragBinary = false;
  #closeCode = 1006;
  #closeReason = '';
  #closed = false;
  #sentClose = false;

  private constructor(socket: Socket, opts: LeanWsOptions) {
    this.socket = socket;
    this.#onMessage = opts.onMessage;
    this.#onClose = opts.onClose;
  }

  /** Opens a connection; resolves after the 101 answer (frames that came with it are already parsed). */
  static connect(opts: LeanWsOptions): Promise<LeanWs> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const accept = createHash('sha1')
        .update(key + GUID)
        .digest('base64');
      const socket = connect({ host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
      socket.setNoDelay(true);
      let head: Buffer = EMPTY;
      let done = false;
      const fail = (err: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error('upgrade timeout')), opts.timeoutMs ?? 10_000);
      const onError = (err: Error) => fail(err);
      const onEnd = () => fail(new Error('closed before the upgrade answer'));
      const onData = (chunk: Buffer) => {
        head = head.length ? Buffer.concat([head, chunk]) : chunk;
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > 16 * 1024) fail(new Error('upgrade answer too long'));
          return;
        }
        const text = head.subarray(0, end).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        if (status !== 101) return fail(new UpgradeError(status, head.subarray(end + 4).toString('utf8')));
        const got = /\r\nsec-websocket-accept: *([^\r\n]+)/i.exec(text)?.[1]?.trim();
        if (got !== accept) return fail(new Error('bad Sec-WebSocket-Accept'));
        done = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('end', onEnd);
        const ws = new LeanWs(socket, opts);
        socket.on('data', (c: Buffer) => ws.#parse(c));
        socket.on('error', () => {
          // 'close' follows
        });
        socket.on('close', () => ws.#finish());
        resolve(ws);
        const rest = head.subarray(end + 4);
        if (rest.length) ws.#parse(rest);
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('end', onEnd);
      const lines = [
        `GET ${opts.path} HTTP/1.1`,
        `Host: ${opts.host}:${opts.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
      ];
      if (opts.protocols?.length) lines.push(`Sec-WebSocket-Protocol: ${opts.protocols.join(', ')}`);
      for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one message (a masked frame). Returns socket.write's answer (false: the kernel buffer is full). */
  send(data: string | Buffer, binary = false): boolean {
    return this.#sendFrame(binary ? OP_BINARY : OP_TEXT, typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** Sends a close frame; the server's close (or a 2 s bound) ends the socket. */
  close(code = 1000): void {
    if (this.#closed) return;
    if (!this.#sentClose) {
      this.#sentClose = true;
      const b = Buffer.allocUnsafe(2);
      b.writeUInt16BE(code, 0);
      this.#sendFrame(OP_CLOSE, b);
    }
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Drops the TCP connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  #sendFrame(opcode: number, payload: Buffer): boolean {
    if (this.#closed || this.socket.destroyed) return false;
    const len = payload.length;
    const hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(hlen + 4 + len);
    frame[0] = 0x80 | opcode;
    if (len < 126) frame[1] = 0x80 | len;
    else if (len < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(len, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
      frame.writeUInt32BE(len >>> 0, 6);
    }
    // Clients must mask; the key needs no cryptographic quality for a benchmark.
    const mask = MASK;
    for (let k = 0; k < 4; k++) frame[hlen + k] = mask[k] = (Math.random() * 256) | 0;
    const o = hlen + 4;
    for (let k = 0; k < len; k++) frame[o + k] = payload[k]! ^ mask[k & 3]!;
    return this.socket.write(frame);
  }

  #parse(chunk: Buffer): void {
    let buf = chunk;
    if (this.#rest) {
      buf = Buffer.concat([this.#rest, chunk]);
      this.#rest = null;
    }
    let i = 0;
    const n = buf.length;
    while (i + 2 <= n) {
      const b0 = buf[i]!;
      const b1 = buf[i + 1]!;
      if (b1 & 0x80) {
        // A server must not mask: protocol error.
        this.#closeCode = 1002;
        this.socket.destroy();
        return;
      }
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (i + 4 > n) break;
        len = buf.readUInt16BE(i + 2);
        h = 4;
      } else if (len === 127) {
        if (i + 10 > n) break;
        len = buf.readUInt32BE(i + 2) * 2 ** 32 + buf.readUInt32BE(i + 6);
        h = 10;
      }
      if (i + h + len > n) break;
      const start = i + h;
      const end = start + len;
      i = end;
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      if (op === OP_TEXT || op === OP_BINARY) {
        if (fin) this.#onMessage(buf.subarray(start, end), op === OP_BINARY, this);
        else {
          this.#frags = [Buffer.from(buf.subarray(start, end))];
          this.#fragBinary = op === OP_BINARY;
        }
      } else if (op === OP_CONT) {
        if (!this.#frags) continue;
        this.#frags.push(Buffer.from(buf.subarray(start, end)));
        if (fin) {
          const whole = Buffer.concat(this.#frags);
          this.#frags = null;
          this.#onMessage(whole, this.#fragBinary, this);
        }
      } else if (op === OP_PING) {
        this.#sendFrame(OP_PONG, Buffer.from(buf.subarray(start, end)));
      } else if (op === OP_CLOSE) {
        this.#closeCode = len >= 2 ? buf.readUInt16BE(start) : 1005;
        this.#closeReason = len > 2 ? buf.subarray(start + 2, end).toString('utf8') : '';
        if (!this.#sentClose) {
          this.#sentClose = true;
          this.#sendFrame(OP_CLOSE, len >= 2 ? Buffer.from(buf.subarray(start, start + 2)) : EMPTY);
        }
        this.socket.end();
        return;
      }
      // OP_PONG and unknown control frames: ignored.
    }
    if (i < n) this.#rest = Buffer.from(buf.subarray(i));
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.(this.#closeCode, this.#closeReason);
  }
}
