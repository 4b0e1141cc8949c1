import type { Io } from './options.ts';

export const SUB_USAGE = `hubcast sub TOPIC_OR_PATTERN...`;

export async function subCommand(_args: string[], io: Io): Promise<number> {
  io.err('not yet\n');
  return 1;
}
