import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ErrorCode } from '../core/errors.ts';
import { FailureBudget } from '../core/rate-limit.ts';
import type { Logger } from '../logger.ts';
import { REFUSAL_CLOSE as PROTOCOL_REFUSAL_CLOSE } from '../../packages/client/src/protocol.ts';
import { SUBPROTOCOL } from './credentials.ts';
import { rejectUpgrade } from './reject.ts';
import { RefusalLog } from './refusal-log.ts';

/**
 * Close codes for refusals told to browsers (docs/websocket.md#refusals-for-browsers). A browser
 * cannot read an upgrade's HTTP status (it sees 1006 for every refusal), so a request that
 * authenticates the browser way gets its refusal as a completed handshake closed at once with one of
 * these, the error code as the close reason. 40xx: reconnect later with backoff; 45xx: do not
 * reconnect automatically. The last digit echoes the HTTP status where one fits (401, 403).
 */
export const REFUSAL_CLOSE = PROTOCOL_REFUSAL_CLOSE satisfies Partial<Record<ErrorCode, number>>;
const closeCodeOf: Partial<Record<ErrorCode, number>> = REFUSAL_CLOSE;

/** Codes whose refusals another part of the gateway already logs, one line each. */
const LOGGED_ELSEWHERE: ReadonlySet<ErrorCode> = new Set(['unauthorized', 'duplicate_connection']);

/** A refused browser's socket gets this long to answer the close frame before it is dropped. */
const CLOSE_WAIT_MS = 2000;
/** Handshake-then-close refusals in flight on this node at once; past it, plain HTTP answers. */
const MAX_CLOSING = 1000;

/** One upgrade request on its way through the gateway, as far as a refusal needs to know it. */
export interface Upgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  ip: string;
  /** The credentials came the browser way (`?ticket=`, or the `hubcast.bearer.` subprotocol). */
  browser: boolean;
  /** A ticket named in the URL and not yet used up; any refusal uses it up. */
  ticket: string | undefined;
}

export interface RefuserDeps {
  /** Per source address: how many refusals may be told by close code (ws.closeRefusals). */
  closeRefusals: { perMinute: number; burst: number };
  log: Logger;
  /** Uses up a ticket (single use, whatever the outcome of the request that named it). */
  burnTicket: (ticket: string) => Promise<void>;
  now?: () => number;
}

/**
 * Answers refused upgrades: a plain HTTP status with the JSON error body, or, for browser forms,
 * a handshake closed at once with a documented close code. Every refusal uses up the request's
 * ticket and is logged, rate-limited (RefusalLog).
 */
export class Refuser {
  readonly #budget: FailureBudget;
  readonly #wss: WebSocketServer;
  readonly #log: RefusalLog;
  readonly #burnTicket: (ticket: string) => Promise<void>;
  readonly #debug: Logger;
  #closing = 0;

  constructor(deps: RefuserDeps) {
    const now = deps.now ?? Date.now;
    this.#budget = new FailureBudget({ ...deps.closeRefusals, now });
    this.#log = new RefusalLog(deps.log, { now });
    this.#debug = deps.log;
    this.#burnTicket = deps.burnTicket;
    // Its own server (never closed): a refusal during shutdown can still be told by close code.
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: 125,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.#wss.on('wsClientError', wsClientError);
  }

  /**
   * Refuses the upgrade. `status`/`headers` are what a header client gets; a browser form gets the
   * close code of `code` instead, while its source is within ws.closeRefusals.
   */
  refuse(up: Upgrade, status: number, code: ErrorCode, message?: string, headers?: Record<string, string>): void {
    if (up.ticket !== undefined) this.burn(up);
    const close = up.browser ? closeCodeOf[code] : undefined;
    const told = close !== undefined && this.#mayClose(up.ip) ? this.#closeAfterHandshake(up, close, code) : false;
    if (!LOGGED_ELSEWHERE.has(code))
      this.#log.note(code, up.ip, { status, ...(told ? { close } : {}), message, origin: up.req.headers.origin });
    if (!told) rejectUpgrade(up.socket, status, code, message, headers);
  }

  /** Uses up the request's ticket now (its outcome no longer matters). */
  burn(up: Upgrade): void {
    const ticket = up.ticket;
    if (ticket === undefined) return;
    up.ticket = undefined;
    this.#burnTicket(ticket).catch((err: unknown) => this.#debug.debug({ err }, 'upgrade: could not use up a refused ticket'));
  }

  /** Forgets sources whose close-refusal budget has refilled; logs what the refusal log held back. */
  sweep(): void {
    this.#budget.sweep();
    this.#log.tick();
  }

  #mayClose(ip: string): boolean {
    if (this.#closing >= MAX_CLOSING || this.#budget.retryAfterS(ip) > 0) return false;
    this.#budget.fail(ip);
    return true;
  }

  /** Completes the handshake and closes at once; false only when nothing was written (the caller answers over HTTP). */
  #closeAfterHandshake(up: Upgrade, close: number, code: ErrorCode): boolean {
    if (!up.socket.writable || up.socket.destroyed) return false;
    let done = false;
    const socket = up.socket as Socket;
    // Corked: the 101 and the close frame leave in one write.
    socket.cork();
    this.#wss.handleUpgrade(up.req, up.socket, up.head, (ws) => {
      done = true;
      this.#closing++;
      const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
      timer.unref();
      ws.on('error', ignore);
      ws.once('close', () => {
        clearTimeout(timer);
        this.#closing--;
      });
      ws.close(close, code);
    });
    socket.uncork();
    // ws answered with its own refusal (through wsClientError) or dropped a half-closed socket.
    return done || up.socket.destroyed || !up.socket.writable;
  }
}

function ignore(): void {}

/** ws found the handshake malformed (it was checked before, so rarely): the JSON 400, not ws's text. */
export function wsClientError(err: Error, socket: Duplex): void {
  rejectUpgrade(socket, 400, 'bad_request', `invalid WebSocket handshake: ${err.message}`);
}
