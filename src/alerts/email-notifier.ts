import { createTransport, type Transporter } from 'nodemailer';
import type { AlertKind } from './alerts.ts';
import { subjectOf, type AlertDigest, type Notifier } from './notifier.ts';

export interface EmailOptions {
  /** smtp:// or smtps:// URL; may carry credentials, so it is never logged. */
  smtpUrl: string;
  from: string;
  to: readonly string[];
}

/** A send that has not finished by then is given up (a server trickling its replies defeats socket timeouts). */
const SEND_DEADLINE_MS = 30_000;

const MEANING: Record<AlertKind, string> = {
  invalid_token:
    'Upgrade or ticket requests with missing, malformed, unknown, expired or revoked credentials. A burst from few addresses ' +
    'is usually a misconfigured or attacking client; check the sources against your firewall.',
  consumer_sent_message:
    'A consumer sent a frame it may not send and was closed with 4501. A buggy or tampered client; the client_id names it.',
  internal_error: 'An unexpected error in Hubcast; the affected connection or request failed. The log has the full error under the ref.',
  store_unavailable:
    'The store could not be read or written (disk full, locked). New connections and ingest get 503 until it recovers; ' +
    'live connections keep receiving.',
  broker_unavailable:
    'This node lost its cluster broker (Redis, NATS or PostgreSQL LISTEN/NOTIFY). Ingest keeps being stored; other nodes’ ' +
    'publications reach its consumers again, from history, once it reconnects (it retries by itself). Check the broker.',
  duplicate_connection:
    'Repeated connections with a token that is already connected: the token may have leaked. Consider revoking the client.',
  source_unreachable:
    'A connector could not reach its source through all its reconnect attempts. It keeps retrying; records wait at the source.',
  source_recovered: 'A connector reached its source again after source_unreachable; records flow again.',
  source_failed:
    'A connector stopped on an error retrying cannot fix (bad credentials, missing table or queue). Fix its settings and restart.',
  source_refused:
    'A connector refused input for safety (a file connector found a symbolic link, or a file outside its folder). It was not read; find out who put it there.',
  pipeline_error:
    'Records failed in a connector pipeline (bad data, expression error) and were put in the dead-letter store: hubcast dlq list.',
  gateway_unreachable:
    'hubcast connect could not deliver spooled records to the gateway through its retry attempts. They stay spooled and drain in order when it returns.',
};

/**
 * Alert e-mail over SMTP (nodemailer): a plain-text digest to `alerts.email.to`. Resolves once the
 * SMTP server has accepted the mail for every recipient; rejects otherwise.
 */
export class EmailNotifier implements Notifier {
  readonly channel = 'email';
  readonly #o: EmailOptions;
  #transport: Transporter | undefined;

  constructor(options: EmailOptions) {
    this.#o = options;
  }

  async send(d: AlertDigest, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new Error('aborted');
    const transport = (this.#transport ??= createTransport({
      url: this.#o.smtpUrl,
      // One pooled connection: alerts are few, and a pool can be closed mid-send on shutdown.
      pool: true,
      maxConnections: 1,
      idleTimeout: 30_000,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
      logger: false,
    }));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const giveUp = new Promise<never>((_, reject) => {
      const fail = (why: string) => {
        // A stalled connection is closed, and the next send starts a fresh pool.
        if (this.#transport === transport) this.#transport = undefined;
        transport.close({ force: true });
        reject(Object.assign(new Error(why), { code: 'ETIMEDOUT' }));
      };
      timer = setTimeout(() => fail(`no answer from the SMTP server within ${SEND_DEADLINE_MS} ms`), SEND_DEADLINE_MS);
      onAbort = () => fail('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const info = await Promise.race([
        transport.sendMail({
          from: this.#o.from,
          to: [...this.#o.to],
          subject: subjectOf(d),
          text: renderText(d),
          headers: { 'X-Hubcast-Alert': d.kind, 'X-Hubcast-Digest': d.id },
        }),
        giveUp,
      ]);
      const rejected = (info as { rejected?: unknown[] }).rejected ?? [];
      if (rejected.length) throw Object.assign(new Error(`SMTP server rejected ${rejected.length} recipient(s)`), { code: 'EENVELOPE' });
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.#transport?.close({ force: true });
    this.#transport = undefined;
  }
}

/** The mail body: plain text, everything from the digest, nothing else. */
export function renderText(d: AlertDigest): string {
  const spanS = Math.round((Date.parse(d.lastAt) - Date.parse(d.firstAt)) / 1000);
  const lines = [
    `Hubcast alert: ${d.kind}`,
    '',
    `Node:      ${d.nodeId} (host ${d.host})`,
    ...(d.clientId ? [`Client:    ${d.clientId}`] : []),
    ...(d.connector ? [`Connector: ${d.connector}`] : []),
    `Events:    ${d.count} in ${spanS} s`,
    `First:     ${d.firstAt}`,
    `Last:      ${d.lastAt}`,
  ];
  if (d.sources) {
    lines.push(`Sources:   ${d.sources}${d.sourcesCapped ? '+' : ''} distinct address${d.sources === 1 ? '' : 'es'}`, '', 'Top sources:');
    for (const { ip, count } of d.topIps) lines.push(`  ${ip}  ${count}`);
  }
  if (d.details.length) {
    lines.push('', 'Details:');
    for (const detail of d.details) lines.push(`  ${detail}`);
  }
  lines.push(
    '',
    d.seq === 1
      ? 'This is the first digest of this alert group; further events are folded into one message per repeat window.'
      : `Digest ${d.seq} of this alert group: ${d.total} events since the group opened.`,
    '',
    `What it means: ${MEANING[d.kind]}`,
    '',
    `Digest id: ${d.id}`,
  );
  return lines.join('\n') + '\n';
}
