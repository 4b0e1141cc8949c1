import { isIP } from 'node:net';
import { configFrom, UsageError } from './options.ts';

/**
 * The base URL of the hub that `hubcast sub` and `hubcast pub` talk to: `--url`, else the configured
 * `host` and `port` (`--config`, `HUBCAST_PORT`, `--port`…), with `https` when `tls.cert` is set. A
 * wildcard listen address (`0.0.0.0`, `::`) is reached at `localhost`.
 */
export function hubUrl(values: Record<string, unknown>): string {
  const given = values.url as string | undefined;
  if (given !== undefined) {
    let url: URL;
    try {
      url = new URL(given);
    } catch {
      throw new UsageError(`--url "${given}" is not a URL (e.g. http://localhost:8080)`);
    }
    if (!/^(https?|wss?):$/.test(url.protocol)) throw new UsageError(`--url must be an http(s):// or ws(s):// URL, not "${given}"`);
    return given.replace(/\/+$/, '');
  }
  const config = configFrom(values);
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const scheme = config.tls.cert ? 'https' : 'http';
  return `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${config.port}`;
}

/** `http(s)://…` for HTTP routes, whichever scheme the URL was given with. */
export function httpBase(url: string): string {
  return url.replace(/^ws(s?):/, 'http$1:');
}

/** What an HTTP error answer says, from Hubcast's JSON body `{"error":{"code","message"}}` when it has one. */
export function describeHttpError(status: number, body: string, headers: Headers): string {
  let text = `${status}`;
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    if (e && typeof e.code === 'string') text += ` ${e.code}: ${String(e.message ?? '')}`;
    else text += ` ${body.slice(0, 200)}`;
  } catch {
    text += body ? ` ${body.slice(0, 200)}` : '';
  }
  const retry = headers.get('retry-after');
  if (retry) text += ` (retry after ${retry} s)`;
  return text;
}

/** A readable reason for a failed `fetch` (connection refused, DNS…), naming the URL. */
export function describeFetchError(url: string, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
}
