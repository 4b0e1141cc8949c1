import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy the test controls, for fault tests: point a client at `proxy.port` instead of
 * the real service; `cut()` destroys every live connection (mid-stream), `refuse()`/`accept()` make
 * new connections fail or pass, `close()` stops it. Never stops the shared service itself.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #refusing = false;
  #paused = false;
  port = 0;
  /** Connections accepted so far (each reconnect adds one). */
  connections = 0;

  private constructor(targetHost: string, targetPort: number) {
    this.#server = createServer((client) => {
      if (this.#refusing) {
        client.destroy();
        return;
      }
      this.connections++;
      const upstream = connect({ host: targetHost, port: targetPort });
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

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const p = new TcpProxy(targetHost, targetPort);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    p.port = (p.#server.address() as { port: number }).port;
    return p;
  }

  /** Destroys every live connection through the proxy (like a network cut). */
  cut(): void {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#pairs.clear();
  }

  /** New connections are closed at once until `accept()`; with `cut`, the source is "down". */
  /**
   * Stops passing the target's output to the clients, for every connection present and future: it
   * piles up (as for a consumer that does not read), which is how a test makes a slow consumer.
   */
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

  refuse(): void {
    this.#refusing = true;
  }

  accept(): void {
    this.#refusing = false;
  }

  get live(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** True when something listens on 127.0.0.1:`port` (a backend service for integration tests). */
export function serviceUp(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/**
 * For integration tests of a backend: resolves true when the service is up. When it is down, a plain
 * `npm test` skips with a printed reason; with HUBCAST_REQUIRE_SERVICES=1 (CI) it fails instead.
 */
export async function requireService(name: string, port: number): Promise<boolean> {
  if (await serviceUp(port)) return true;
  if (process.env.HUBCAST_REQUIRE_SERVICES === '1')
    throw new Error(`${name} is not reachable on 127.0.0.1:${port} and HUBCAST_REQUIRE_SERVICES=1`);
  process.stdout.write(`skipping ${name} tests: nothing listens on 127.0.0.1:${port}\n`);
  return false;
}
