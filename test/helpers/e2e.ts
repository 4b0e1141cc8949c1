import { Socket } from 'node:net';
import type { Harness } from './server.ts';
import { TestClient, type Frame } from './ws-client.ts';

/**
 * Extra helpers for the end-to-end suites (added alongside server.ts / ws-client.ts; nothing there
 * changes).
 */

let barrierSeq = 0;

/**
 * Sends a `ping` with a fresh id and waits for its `pong`. Frames the server wrote before it answered
 * the ping are in `c.frames` afterwards: a bounded "nothing else arrived" check without sleeping.
 */
export async function barrier(c: TestClient, timeoutMs = 3000): Promise<void> {
  const id = `barrier-${++barrierSeq}`;
  c.send({ type: 'ping', id });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no pong for ${id}`);
    const f = await c.next('pong', left);
    if (f.id === id) return;
  }
}

/** JSON frames of `type` currently buffered (not removed). */
export function buffered(c: TestClient, type?: string): Frame[] {
  return c.all().filter((f): f is Frame => !Buffer.isBuffer(f) && (type === undefined || f.type === type));
}

/**
 * Waits for `n` JSON frames of `type` (default `message`; `null`: any type), removing them from the
 * buffer, in arrival order.
 */
export async function takeN(c: TestClient, n: number, type: string | null = 'message', timeoutMs = 5000): Promise<Frame[]> {
  const deadline = Date.now() + timeoutMs;
  const out: Frame[] = [];
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} "${type ?? 'any'}" frames`);
    out.push(await c.next(type ?? undefined, left));
  }
  return out;
}

/** Tracks clients opened outside `h.connect` so that a suite can terminate them in afterEach. */
export class ClientPool {
  readonly #clients: TestClient[] = [];

  /** Opens a WebSocket with `Authorization: Bearer` and returns the client and its `welcome` frame. */
  async open(
    h: Harness,
    token: string,
    opts: { path?: string; query?: string; headers?: Record<string, string> } = {},
  ): Promise<{ c: TestClient; welcome: Frame }> {
    const { path = '/ws', query = '', headers = {} } = opts;
    const c = new TestClient(`${h.wsBase}${path}${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
    this.#clients.push(c);
    await c.opened;
    const welcome = await c.next('welcome');
    return { c, welcome };
  }

  /**
   * Like `open`, but retries (bounded) while the server still answers 409 because it has not yet
   * processed the end of this token's previous connection.
   */
  async reopen(h: Harness, token: string, opts: { query?: string } = {}, timeoutMs = 3000): Promise<{ c: TestClient; welcome: Frame }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.open(h, token, opts);
      } catch (err) {
        if ((err as { status?: number }).status !== 409 || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  closeAll(): void {
    for (const c of this.#clients.splice(0)) c.ws.terminate();
  }
}

/** A POST /entity/<topic> with a raw body. `contentType: null` sends no Content-Type header. */
export async function postRaw(
  h: Harness,
  topic: string,
  body: string | Uint8Array,
  contentType: string | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const hdrs: Record<string, string> = { authorization: `Bearer ${h.ingestKey}`, ...headers };
  if (contentType !== null) hdrs['content-type'] = contentType;
  // A Uint8Array body makes fetch send no Content-Type of its own.
  const raw = typeof body === 'string' ? (contentType === null ? Buffer.from(body) : body) : new Uint8Array(body);
  return h.fetchJson(`/entity/${topic}`, { method: 'POST', headers: hdrs, body: raw });
}

/** A POST /entity with a JSON envelope (any fields) and the harness's key unless overridden. */
export async function postEnvelope(
  h: Harness,
  envelope: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  return h.fetchJson('/entity', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.ingestKey}`, ...headers },
    body: typeof envelope === 'string' ? envelope : JSON.stringify(envelope),
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * The value of one Prometheus sample in GET /metrics text, or undefined when absent. `labels` must
 * match the sample's labels exactly (order-insensitive).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      got[pair.slice(0, eq).trim()] = JSON.parse(pair.slice(eq + 1)) as string;
    }
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(got).length || keys.some((k) => got[k] !== labels[k])) continue;
    return Number(m[3]);
  }
  return undefined;
}

/** GET /metrics as text. */
export async function metricsText(h: Harness): Promise<string> {
  const res = await fetch(`${h.base}/metrics`);
  return res.text();
}

/** Creates a client (subscribe ACL `>` unless given), registers it, connects and subscribes to `topics`. */
export async function subscriber(h: Harness, topics: string[], acl: string[] = ['>']): Promise<TestClient> {
  const token = await h.register(await h.createClient({ subscribe: acl }));
  const c = await h.connect(token);
  for (const t of topics) await c.subscribe(t);
  return c;
}

/**
 * The server's end of a test client's TCP connection (server and client share the test process), to
 * observe how many bytes the server queues for that consumer (`writableLength`).
 */
export function serverSocketOf(c: TestClient): Socket | undefined {
  const local = (c.ws as unknown as { _socket?: Socket })._socket;
  if (!local) return undefined;
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.find(
    (s): s is Socket => s instanceof Socket && s !== local && s.remotePort === local.localPort && s.localPort === local.remotePort,
  );
}
