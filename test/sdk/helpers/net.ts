import { connect, createServer, type Server, type Socket } from 'node:net';

/** A loopback port free right now (for a server that must come back on the same port after a restart). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A loopback TCP proxy whose server-to-client direction can be paused: with it paused, the server's
 * output for the client piles up (as for a consumer that does not read), which is how a test makes a
 * slow consumer without touching the SDK.
 */
export class PausableProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #paused = false;
  port = 0;

  private constructor(targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      const drop = () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      if (this.#paused) upstream.pause();
      else upstream.pipe(client);
    });
  }

  static async start(targetPort: number): Promise<PausableProxy> {
    const p = new PausableProxy(targetPort);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.port = (p.#server.address() as { port: number }).port;
    return p;
  }

  /** Stops reading from the server for every connection, present and future. */
  pause(): void {
    this.#paused = true;
    for (const [client, upstream] of this.#pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  resume(): void {
    this.#paused = false;
    for (const [client, upstream] of this.#pairs) upstream.pipe(client);
  }

  async close(): Promise<void> {
    for (const [c, u] of this.#pairs) {
      c.destroy();
      u.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
