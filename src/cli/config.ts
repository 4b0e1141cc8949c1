import { CONFIG_KEYS, getPath, parseConfig } from '../config/load.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';

export const CONFIG_USAGE = `hubcast config print [--json] [--config FILE] [--<any config key>]
  Shows the effective config (defaults < file < HUBCAST_* environment < flags) with a doc line per key.`;

/** URLs may carry a password (smtp://user:pass@host): never print it. */
function redact(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^/@]*@/i, '$1:***@');
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x)]));
  return v;
}

export async function configCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parse(rest, { json: { type: 'boolean' } });
  if (sub !== 'print' || values.help) {
    if (sub !== 'print' && !values.help) throw new UsageError(CONFIG_USAGE);
    io.out(CONFIG_USAGE + '\n');
    return 0;
  }
  const config = redact(configFrom(values));
  if (values.json) {
    io.out(JSON.stringify(config) + '\n');
    return 0;
  }
  const defaults = parseConfig({});
  for (const k of CONFIG_KEYS) {
    const v = getPath(config, k.path);
    const shown = Array.isArray(v) ? v.join(',') : String(v);
    const def = JSON.stringify(getPath(defaults, k.path)) === JSON.stringify(v) ? '' : '   (changed)';
    io.out(`${k.path} = ${shown}${def}\n    # ${k.doc}${k.choices ? ` One of: ${k.choices.join(', ')}.` : ''}  [${k.env}, ${k.flag}]\n`);
  }
  return 0;
}
