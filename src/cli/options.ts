import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CONFIG_KEYS, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Every config key as a flag (`--history-size`), plus `--config FILE`. */
export const CONFIG_OPTIONS: Options = {
  config: { type: 'string' },
  ...Object.fromEntries(CONFIG_KEYS.map((k) => [k.flag.slice(2), { type: 'string' as const, multiple: k.kind === 'list' }])),
};

export class UsageError extends Error {}

/** Parses a command's arguments: its own options plus every config flag. */
export function parse(
  args: string[],
  own: Options = {},
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...CONFIG_OPTIONS, ...own, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The effective config: defaults < file < environment < these flags. */
export function configFrom(values: Record<string, unknown>): Config {
  const flags: Record<string, string | string[] | undefined> = {};
  for (const k of CONFIG_KEYS) flags[k.path] = values[k.flag.slice(2)] as string | string[] | undefined;
  return loadConfig({ file: values.config as string | undefined, flags });
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Raw bytes to stdout (`hubcast sub --raw` on binary payloads); absent: written as UTF-8 text. */
  bytes?: (b: Uint8Array) => void;
}
