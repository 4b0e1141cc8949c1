import { connect, type Socket } from 'node:net';

/**
 * A lean HTTP/1.1 publisher for the contenders published over HTTP (Hubcast's POST /entity, the bare
 * servers' POST /publish): a few keep-alive connections, each with up to `depth` pipelined requests
 * (answers come back in order), bodies sent as-is, answers parsed just enough (status line,
 * Content-Length). Much cheaper per request than node:http, so that the load side does not limit
 * the publish rate.
 */

type Done = (status: number) => void;

class Conn {
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | undefined;
  readonly pending: Done[] = [];
  #buf: Buffer | null = null;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  #open(): Socket {
    const s = connect({ host: this.#host, port: this.#port });
    s.setNoDelay(true);
    s.on('data', (c: Buffer) => this.#parse(c));
    s.on('error', () => {
      // 'close' follows
    });
    s.on('close', () => {
      if (this.#socket === s) this.#socket = undefined;
      this.#buf = null;
      for (const d of this.pending.splice(0)) d(-1);
    });
    return s;
  }

  send(head: string, body: Buffer, done: Done): void {
    const s = (this.#socket ??= this.#open());
    this.pending.push(done);
    s.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  }

  close(): void {
    this.#socket?.destroy();
  }

  #parse(chunk: Buffer): void {
    let buf = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    this.#buf = null;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) break;
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!m && /\r\ntransfer-encoding:/i.test(head)) {
        // Not expected from these servers: give up on the connection.
        this.#socket?.destroy();
        return;
      }
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) break;
      buf = buf.subarray(total);
      this.pending.shift()?.(status);
    }
    if (buf.length) this.#buf = Buffer.from(buf);
  }
}

export class HttpPipeline {
  readonly #conns: Conn[];
  readonly #host: string;
  readonly #port: number;

  constructor(port: number, connections = 4, host = '127.0.0.1') {
    this.#host = host;
    this.#port = port;
    this.#conns = Array.from({ length: connections }, () => new Conn(host, port));
  }

  /** Requests not answered yet, over all connections. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.#conns) n += c.pending.length;
    return n;
  }

  /** POSTs `body` to `path` on the least busy connection; `done(status)` (-1: the connection broke). */
  post(path: string, headers: Record<string, string>, body: Buffer, done: Done): void {
    let best = this.#conns[0]!;
    for (const c of this.#conns) if (c.pending.length < best.pending.length) best = c;
    let head = `POST ${path} HTTP/1.1\r\nHost: ${this.#host}:${this.#port}\r\nContent-Length: ${body.length}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    best.send(head + '\r\n', body, done);
  }

  close(): void {
    for (const c of this.#conns) c.close();
  }
}
