import type { AddressInfo, Socket } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  /** The decoded plain-text body. */
  text: string;
  headers: Map<string, unknown>;
  /** The message as it came over the wire (to check that no secret is in it in any encoding). */
  raw: string;
}

/**
 * A real SMTP server on 127.0.0.1 that keeps every mail it receives, parsed. `stop()` drops it at
 * once (open connections included) and `start()` brings it back on the same port: an SMTP outage.
 */
export class SmtpSink {
  readonly mails: ReceivedMail[] = [];
  #server: SMTPServer | undefined;
  #sockets = new Set<Socket>();
  #port = 0;

  /** Starts a sink on an ephemeral port. */
  static async start(): Promise<SmtpSink> {
    const sink = new SmtpSink();
    await sink.start();
    return sink;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  /** (Re)starts on the port it had (or an ephemeral one the first time). */
  async start(): Promise<void> {
    if (this.#server) return;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw).then(
            (m) => {
              this.mails.push({
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to: session.envelope.rcptTo.map((r) => r.address),
                subject: m.subject ?? '',
                text: m.text ?? '',
                headers: m.headers,
                raw: raw.toString('utf8'),
              });
              cb();
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
    server.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops accepting and drops every open connection. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await closed;
  }

  /** Mails whose subject or text matches. */
  matching(re: RegExp): ReceivedMail[] {
    return this.mails.filter((m) => re.test(m.subject) || re.test(m.text));
  }
}
