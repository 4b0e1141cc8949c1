import type { Logger } from '../logger.ts';

const WINDOW_MS = 60_000;
/** Distinct (code, address) lines per window; beyond it refusals are only counted. */
const MAX_LINES = 50;
const MAX_FIELD = 200;

/**
 * Logs refused upgrades without letting a flood of them flood the log: at most one line per (error
 * code, source address) per minute, and at most MAX_LINES lines per minute in all. What was held
 * back is counted and told in one summary line when the window ends (at the next refusal or the
 * next heartbeat sweep). Memory is bounded by MAX_LINES keys.
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #seen = new Set<string>();
  #windowStart = 0;
  #held = 0;
  #heldByCode = new Map<string, number>();

  constructor(log: Logger, opts: { now?: () => number } = {}) {
    this.#log = log;
    this.#now = opts.now ?? Date.now;
  }

  note(
    code: string,
    ip: string,
    fields: { status: number; close?: number; message?: string | undefined; origin?: string | undefined },
  ): void {
    const now = this.#now();
    if (now - this.#windowStart >= WINDOW_MS) {
      this.flush();
      this.#windowStart = now;
    }
    const key = `${code} ${ip}`;
    if (this.#seen.has(key) || this.#seen.size >= MAX_LINES) {
      this.#held++;
      this.#heldByCode.set(code, (this.#heldByCode.get(code) ?? 0) + 1);
      return;
    }
    this.#seen.add(key);
    const { status, close, message, origin } = fields;
    this.#log.info(
      {
        code,
        status,
        ...(close !== undefined ? { close } : {}),
        ip,
        ...(message !== undefined ? { detail: message } : {}),
        // The Origin is the browser's, not a credential; capped as it is the client's text.
        ...(origin !== undefined ? { origin: origin.slice(0, MAX_FIELD) } : {}),
      },
      'upgrade refused',
    );
  }

  /** Ends the window if its minute is over (called by the heartbeat sweep, so a summary is not held forever). */
  tick(): void {
    if (this.#now() - this.#windowStart >= WINDOW_MS) this.flush();
  }

  /** Ends the current window: one summary line for what was held back, if anything. */
  flush(): void {
    if (this.#held > 0) {
      this.#log.info(
        { held_back: this.#held, by_code: Object.fromEntries(this.#heldByCode), window_s: WINDOW_MS / 1000 },
        'upgrade refusals not logged one by one (at most one line per code and address per minute)',
      );
    }
    this.#seen.clear();
    this.#heldByCode = new Map();
    this.#held = 0;
    this.#windowStart = this.#now();
  }
}
