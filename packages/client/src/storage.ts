import type { Position } from './protocol.ts';

/**
 * Where a client keeps its position (last offset processed, and epoch) per concrete topic, so that a
 * new `Hubcast` — after a page reload or a process restart — resumes where the last one stopped.
 * Either method may return a promise. `set` is called after each message has been handed to the
 * application, and after each `subscribed` answer.
 */
export interface PositionStorage {
  get(topic: string): Position | undefined | Promise<Position | undefined>;
  set(topic: string, position: Position): void | Promise<void>;
}

/** Positions kept in memory (the default): a reconnect resumes, a new process starts afresh. */
export function memoryStorage(): PositionStorage {
  const m = new Map<string, Position>();
  return { get: (t) => m.get(t), set: (t, p) => void m.set(t, { ...p }) };
}

/** Positions kept in the browser's `localStorage`, under `prefix + topic`. */
export function localStorageStorage(prefix = 'hubcast:'): PositionStorage {
  const ls = (globalThis as { localStorage?: { getItem(k: string): string | null; setItem(k: string, v: string): void } }).localStorage;
  if (!ls) throw new TypeError('localStorage is not available here');
  return {
    get(topic) {
      const v = ls.getItem(prefix + topic);
      return v ? (JSON.parse(v) as Position) : undefined;
    },
    set: (topic, p) => ls.setItem(prefix + topic, JSON.stringify(p)),
  };
}
