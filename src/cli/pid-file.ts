import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.ts';

/**
 * The `pidFile` of `hubcast start`: lets an operator signal exactly this process
 * (`kill -HUP "$(cat FILE)"`) instead of matching process names, which can hit another process.
 */

/**
 * Writes this process's id to `path`, replacing any file there (one left by a killed process is
 * stale). Called only once the port is bound, so a second server on the same port fails to start
 * before it could overwrite the file of the first. Written beside and renamed into place, so that a
 * reader never sees half a number.
 */
export function writePidFile(path: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${process.pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
    throw new ConfigError(`pidFile: cannot write "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Removes the file at exit, unless it now names another process (a newer server wrote it). */
export function removePidFile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  } catch {
    // already gone, or unreadable: nothing of ours to remove
  }
}
