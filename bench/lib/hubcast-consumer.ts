import { LeanWs, UpgradeError } from './lean-ws.ts';

/**
 * A Hubcast consumer on the lean WebSocket client (bench/lib/lean-ws.ts), for the scenarios that
 * need more than the comparison adapters give (memory's scale run from many source addresses,
 * reconnect with `since`): `Authorization: Bearer`, `welcome`, then optionally one `subscribe`
 * (with `since`) answered by `subscribed`.
 */

export interface SubscribedFrame {
  topic: string;
  offset: number;
  epoch: string;
  recovered?: boolean;
}

export interface HubcastConsumerOptions {
  port: number;
  token: string;
  localAddress?: string;
  timeoutMs: number;
  /** Subscribe after `welcome`; the promise resolves on `subscribed`. Without it, on `welcome`. */
  subscribe?: { topic: string; since?: { offset: number; epoch?: string } };
  /** `{"type":"message",…}` frames, as raw bytes (valid during the call only). */
  onMessage?: (data: Buffer) => void;
  /** The connection ended after it was set up. */
  onClose?: (code: number) => void;
}

export interface HubcastConsumer {
  ws: LeanWs;
  subscribed: SubscribedFrame | undefined;
}

/** Why a consumer could not be set up, short enough to count by (`http_409`, `timeout`, `ECONNRESET`). */
export function failureReason(err: unknown): string {
  if (err instanceof UpgradeError) return `http_${err.status}`;
  const e = err as NodeJS.ErrnoException;
  if (e?.code) return e.code;
  const msg = String(e?.message ?? err);
  if (msg.includes('timeout') || msg.includes('within')) return 'timeout';
  if (msg.startsWith('closed')) return msg.split(' ').slice(0, 2).join('_');
  return msg.slice(0, 60);
}

/** Is this a `{"type":"message",…}` frame (what Hubcast sends for every delivery)? Cheap: no parse. */
export function isMessageFrame(data: Buffer): boolean {
  return data[9] === 0x6d /* m */ && data[2] === 0x74 /* t */ && data[8] === 0x22; /* " */
}

export function connectHubcast(o: HubcastConsumerOptions): Promise<HubcastConsumer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const result: HubcastConsumer = { ws: undefined as unknown as LeanWs, subscribed: undefined };
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        result.ws?.destroy();
        reject(err);
      } else resolve(result);
    };
    const timer = setTimeout(() => finish(new Error('timeout waiting for welcome/subscribed')), o.timeoutMs);
    LeanWs.connect({
      host: '127.0.0.1',
      port: o.port,
      path: '/ws',
      headers: { authorization: `Bearer ${o.token}` },
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      timeoutMs: o.timeoutMs,
      onMessage(data, _binary, ws) {
        result.ws = ws;
        if (isMessageFrame(data)) return o.onMessage?.(data);
        let m: { type?: string; code?: string; message?: string } & Partial<SubscribedFrame>;
        try {
          m = JSON.parse(data.toString('utf8')) as typeof m;
        } catch {
          return;
        }
        if (m.type === 'welcome') {
          if (!o.subscribe) return finish();
          ws.send(
            JSON.stringify({
              type: 'subscribe',
              topic: o.subscribe.topic,
              id: 1,
              ...(o.subscribe.since ? { since: o.subscribe.since } : {}),
            }),
          );
        } else if (m.type === 'subscribed') {
          result.subscribed = {
            topic: m.topic!,
            offset: m.offset!,
            epoch: m.epoch!,
            ...(m.recovered !== undefined ? { recovered: m.recovered } : {}),
          };
          finish();
        } else if (m.type === 'error' && !settled) finish(new Error(`closed subscribe_${m.code}`));
      },
      onClose(code) {
        if (!settled) return finish(new Error(`closed ${code} before set up`));
        o.onClose?.(code);
      },
    }).then(
      (ws) => {
        result.ws = ws;
        if (settled) ws.destroy();
      },
      (err: unknown) => finish(err as Error),
    );
  });
}
