/**
 * The admin API as the dashboard calls it: JSON requests with `Authorization: Bearer <admin key>`,
 * failures as `ApiError` (the server's `{"error":{"code","message"}}`, or `network` when it did not
 * answer), and the event stream read with fetch (an EventSource cannot send the key in a header).
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    /* not the JSON error shape */
  }
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

export class Api {
  constructor(readonly key: string) {}

  async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers,
        cache: 'no-store',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, 'network', 'Hubcast did not answer (is it running, and reachable from here?)');
    }
    if (!res.ok) throw await failure(res);
    return (await res.json()) as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.call<T>('GET', path, undefined, signal);
  }

  /**
   * Reads `GET /admin/api/stream` until it ends, the signal aborts, or nothing (not even the
   * once-a-second overview) arrives for `idleMs`; each event goes to `onEvent`. Rejects with
   * `ApiError` when the server refuses the stream (401, 429 at `admin.maxStreams`…).
   */
  async stream(onEvent: (event: string, data: unknown) => void, signal: AbortSignal, onOpen: () => void, idleMs = 5000): Promise<void> {
    const local = new AbortController();
    const stop = () => local.abort();
    signal.addEventListener('abort', stop, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(stop, idleMs);
    };
    try {
      touch();
      let res: Response;
      try {
        res = await fetch('/admin/api/stream', {
          headers: { authorization: `Bearer ${this.key}`, accept: 'text/event-stream' },
          cache: 'no-store',
          signal: local.signal,
        });
      } catch {
        throw new ApiError(0, 'network', 'the event stream could not be opened');
      }
      if (!res.ok || !res.body) throw await failure(res);
      onOpen();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch {
          return; // aborted (idle, signed out) or the connection dropped
        }
        if (chunk.done) return;
        touch();
        buffer += chunk.value.replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (!data.length) continue; // a comment or a keep-alive
          try {
            onEvent(event, JSON.parse(data.join('\n')));
          } catch {
            /* not JSON: not an event of this API */
          }
        }
        if (buffer.length > 1024 * 1024) return; // no event boundary in a megabyte: not this API
      }
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', stop);
      local.abort();
    }
  }
}

/** A one-line explanation of a failed call, for the page. */
export function explain(err: unknown): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  if (err.code === 'network') return err.message;
  const wait = err.retryAfterS ? ` (retry in ${err.retryAfterS} s)` : '';
  return `${err.message} [${err.status} ${err.code}]${wait}`;
}
