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
 * Positions kept in one JSON file (`{"<topic>": {"offset": 7, "epoch": "…"}}`), written atomically
 * (a temporary file renamed over it) after each change, so a process that restarts — even after
 * `kill -9` — resumes from the last message it was handed.
 */
export function fileStorage(path: string): PositionStorage {
  let all: Record<string, Position> = {};
  try {
    all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Position>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return {
    get: (topic) => all[topic],
    set(topic, position) {
      all[topic] = position;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path + '.tmp', JSON.stringify(all));
      renameSync(path + '.tmp', path);
    },
  };
}

export * from './index.ts';
