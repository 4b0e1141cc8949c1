import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Position } from './protocol.ts';
import type { PositionStorage } from './storage.ts';

/**
 * `@hubcast/client/node`: helpers that need Node APIs, never in the browser bundle.
 *
 * @module
 */

/**
 * Positions kept in one JSON file (`{"<topic>": {"offset": 7, "epoch": "…"}}`). Changes made in one
 * turn of the event loop (a burst of messages read at once) are written together, atomically (a
 * temporary file renamed over it), before the next turn: a process that restarts — even after
 * `kill -9` — resumes from the last message it was handed, give or take that last burst (delivered
 * again: at least once across a crash of the consumer). An exiting process writes what is pending.
 */
export function fileStorage(path: string): PositionStorage {
  let all: Record<string, Position> = {};
  try {
    all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Position>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let pending = false;
  const write = () => {
    if (!pending) return;
    pending = false;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path + '.tmp', JSON.stringify(all));
    renameSync(path + '.tmp', path);
  };
  // A process that exits (process.exit, the end of the event loop) writes what is pending first.
  process.once('exit', write);
  return {
    get: (topic) => all[topic],
    set(topic, position) {
      all[topic] = position;
      if (!pending) {
        pending = true;
        setImmediate(write);
      }
    },
  };
}

export * from './index.ts';
