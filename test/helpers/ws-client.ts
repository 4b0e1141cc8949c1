import { WebSocket, type ClientOptions } from 'ws';

export interface Frame {
  type: string;
  [k: string]: unknown;
}

export interface Closed {
  code: number;
  reason: string;
}

/**
 * An awaitable WebSocket test client: `await c.next('message')` returns the next JSON frame of that
 * type (frames of other types are kept for later calls), `await c.nextBinary()` the next binary
 * frame, `await c.closed` the close code.
 */
let subscribeSeq = 0;

export class TestClient {
  readonly ws: WebSocket;
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  readonly frames: (Frame | Buffer)[] = [];
  #waiters: (() => void)[] = [];

  constructor(url: string, opts: ClientOptions & { protocols?: string[] } = {}) {
    const { protocols, ...rest } = opts;
    this.ws = new WebSocket(url, protocols ?? [], rest);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push(isBinary ? data : (JSON.parse(data.toString()) as Frame));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })),
      );
    });
    this.closed.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
    this.ws.on('error', () => {});
  }

  async #take<T>(pick: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = pick();
      if (got !== undefined) return got;
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(
          `no ${what} within ${timeoutMs} ms (state ${this.ws.readyState}); have: ${JSON.stringify(this.frames.map((f) => (Buffer.isBuffer(f) ? '<binary>' : f)))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next JSON frame (of `type`, if given), removed from the buffer. */
  next(type?: string, timeoutMs = 3000): Promise<Frame> {
    return this.#take(
      () => {
        const i = this.frames.findIndex((f) => !Buffer.isBuffer(f) && (type === undefined || f.type === type));
        return i === -1 ? undefined : (this.frames.splice(i, 1)[0] as Frame);
      },
      type ? `"${type}" frame` : 'frame',
      timeoutMs,
    );
  }

  nextBinary(timeoutMs = 3000): Promise<Buffer> {
    return this.#take(
      () => {
        const i = this.frames.findIndex((f) => Buffer.isBuffer(f));
        return i === -1 ? undefined : (this.frames.splice(i, 1)[0] as Buffer);
      },
      'binary frame',
      timeoutMs,
    );
  }

  /** Every frame received so far, in order (JSON frames parsed), without removing them. */
  all(): (Frame | Buffer)[] {
    return [...this.frames];
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Subscribes and returns the `subscribed` answer. */
  async subscribe(topic: string, since?: { offset: number; epoch?: string }): Promise<Frame> {
    // Request ids are at most 64 characters: the topic (up to 200) cannot be one.
    this.send({ type: 'subscribe', topic, id: `sub-${++subscribeSeq}`, ...(since ? { since } : {}) });
    const f = await this.next();
    if (f.type !== 'subscribed') throw new Error(`subscribe ${topic}: got ${JSON.stringify(f)}`);
    return f;
  }

  close(code?: number): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }
}

/** Decodes a binary message frame: 4-byte length, JSON header, payload. */
export function decodeBinary(buf: Buffer): { header: Frame; payload: Buffer } {
  const n = buf.readUInt32BE(0);
  return { header: JSON.parse(buf.subarray(4, 4 + n).toString()) as Frame, payload: buf.subarray(4 + n) };
}
