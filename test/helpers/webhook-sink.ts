import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedPost {
  headers: IncomingHttpHeaders;
  body: any;
  /** The status the sink answered. */
  status: number;
}

/**
 * A real HTTP server on 127.0.0.1 that records every JSON POST. `failNext(n)` answers the next `n`
 * requests with 500 (a broken receiver); they are recorded too, with their status.
 */
export class WebhookSink {
  readonly posts: ReceivedPost[] = [];
  #server: Server;
  #sockets = new Set<Socket>();
  #failures = 0;

  private constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = Buffer.concat(chunks).toString('utf8');
        }
        const status = this.#failures > 0 ? 500 : 200;
        if (this.#failures > 0) this.#failures--;
        this.posts.push({ headers: req.headers, body, status });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status === 200 }));
      });
    });
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(): Promise<WebhookSink> {
    const sink = new WebhookSink();
    await new Promise<void>((resolve) => sink.#server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks/hubcast`;
  }

  /** Answers the next `n` requests with 500. */
  failNext(n: number): void {
    this.#failures = n;
  }

  /** Posts that were answered 2xx. */
  get delivered(): ReceivedPost[] {
    return this.posts.filter((p) => p.status < 300);
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
