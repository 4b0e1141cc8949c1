import type { AddressInfo, Socket } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { monoMs } from './time.ts';

export interface SunkMail {
  /** Monotonic ms when the mail was received (compare with the scenario's phases). */
  atMs: number;
  subject: string;
  /** `X-Hubcast-Alert` (the alert kind), or '' for a mail without it. */
  kind: string;
  to: string[];
  /** Size as received, bytes. */
  bytes: number;
}

/** A real SMTP server on 127.0.0.1 that records what Hubcast's alert mailer sends. Bounded: keeps 10,000 mails at most. */
export class SmtpSink {
  readonly mails: SunkMail[] = [];
  dropped = 0;
  #server: SMTPServer | undefined;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  static async start(): Promise<SmtpSink> {
    const sink = new SmtpSink();
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      size: 1024 * 1024,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          const atMs = monoMs();
          simpleParser(raw).then(
            (m) => {
              if (sink.mails.length >= 10_000) sink.dropped++;
              else
                sink.mails.push({
                  atMs,
                  subject: m.subject ?? '',
                  kind: String(m.headers.get('x-hubcast-alert') ?? ''),
                  to: session.envelope.rcptTo.map((r) => r.address),
                  bytes: raw.length,
                });
              cb();
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
    server.server.on('connection', (s: Socket) => {
      sink.#sockets.add(s);
      s.on('close', () => sink.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    sink.#port = (server.server.address() as AddressInfo).port;
    sink.#server = server;
    return sink;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  /** Stops and drops open connections. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  }
}
