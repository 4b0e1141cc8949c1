import { request } from 'node:http';
import type { Harness } from './server.ts';

/** An answer of the admin API. */
export interface AdminAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * Calls the admin API of a test server with an admin key (created here unless given): `get`,
 * `post` (a JSON body), `del`; `base` (default the harness's) points at a separate admin listener.
 */
export interface Admin {
  key: string;
  base: string;
  get(path: string, headers?: Record<string, string>): Promise<AdminAnswer>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<AdminAnswer>;
  del(path: string, headers?: Record<string, string>): Promise<AdminAnswer>;
  /** Any request, with the key unless `authorization` is overridden. */
  request(method: string, path: string, init?: { body?: string; headers?: Record<string, string> }): Promise<AdminAnswer>;
}

export async function adminFor(h: Harness, opts: { key?: string; base?: () => string } = {}): Promise<Admin> {
  const key = opts.key ?? (await h.createKey(`ops-${Math.random().toString(36).slice(2, 8)}`, 'admin'));
  const base = opts.base ?? (() => h.base);
  const request: Admin['request'] = async (method, path, init = {}) => {
    const res = await fetch(base() + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const raw = await res.text();
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, headers: res.headers };
  };
  return {
    key,
    get base() {
      return base();
    },
    get: (path, headers) => request('GET', path, { ...(headers ? { headers } : {}) }),
    post: (path, body, headers) =>
      request('POST', path, {
        headers: { 'content-type': 'application/json', ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      }),
    del: (path, headers) => request('DELETE', path, { ...(headers ? { headers } : {}) }),
    request,
  };
}

/** The `admin action` audit lines logged so far. */
export const auditLines = (h: Harness) => h.logs.filter((l) => l.msg === 'admin action');

/**
 * Reads server-sent events from `GET /admin/api/stream` until `until` returns true for the events
 * gathered so far (or the time is up), then closes the connection. (node:http rather than fetch:
 * an aborted fetch leaves a spare connection open that holds up the server's close.)
 */
export function readEvents(
  url: string,
  key: string,
  until: (events: { event: string; data: any }[]) => boolean,
  timeoutMs = 5000,
): Promise<{ status: number; events: { event: string; data: any }[]; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: any }[] = [];
    const req = request(url, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      let buf = '';
      const done = () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events, headers: res.headers });
      };
      const timer = setTimeout(done, timeoutMs);
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        res.on('data', (c: string) => (buf += c));
        res.on('end', () => {
          events.push({ event: 'body', data: JSON.parse(buf) });
          done();
        });
        return;
      }
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
        if (until(events)) done();
      });
      res.on('end', done);
      res.on('error', done);
    });
    req.on('error', reject);
    req.end();
  });
}
