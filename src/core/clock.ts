/** Time source; injectable so that tests can move time (token idle expiry, tickets, history TTL). */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
