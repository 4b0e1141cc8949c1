import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

type LeafKind = 'string' | 'number' | 'boolean' | 'list' | 'duration';

export interface ConfigKey {
  /** `history.size` */
  path: string;
  /** `HUBCAST_HISTORY_SIZE` */
  env: string;
  /** `--history-size` */
  flag: string;
  kind: LeafKind;
  doc: string;
  default: unknown;
  choices?: readonly string[];
}

function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

function kindOf(s: z.ZodTypeAny): LeafKind {
  if (s instanceof z.ZodNumber) return 'number';
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodArray) return 'list';
  if (s instanceof z.ZodUnion) return 'duration';
  return 'string';
}

const snake = (k: string) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
const kebab = (k: string) => k.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function walk(obj: z.ZodObject<z.ZodRawShape>, prefix: string[], out: ConfigKey[]): void {
  for (const [name, raw] of Object.entries(obj.shape) as [string, z.ZodTypeAny][]) {
    const inner = unwrap(raw);
    const path = [...prefix, name];
    if (inner instanceof z.ZodObject) {
      walk(inner as z.ZodObject<z.ZodRawShape>, path, out);
      continue;
    }
    // Lists of objects (connectors) come from the config file only: no env variable or flag.
    if (inner instanceof z.ZodArray && !(unwrap(inner.element as z.ZodTypeAny) instanceof z.ZodString)) continue;
    const def = raw instanceof z.ZodDefault ? raw._def.defaultValue() : undefined;
    out.push({
      path: path.join('.'),
      env: 'HUBCAST_' + path.map(snake).join('_'),
      flag: '--' + path.map(kebab).join('-'),
      kind: kindOf(inner),
      doc: raw.description ?? inner.description ?? '',
      default: def,
      ...(inner instanceof z.ZodEnum ? { choices: inner.options as string[] } : {}),
    });
  }
}

/** Every leaf key of the schema, with its env variable, flag, doc and default. */
export const CONFIG_KEYS: readonly ConfigKey[] = (() => {
  const out: ConfigKey[] = [];
  walk(unwrap(configSchema) as unknown as z.ZodObject<z.ZodRawShape>, [], out);
  return Object.freeze(out);
})();

function coerce(key: ConfigKey, value: string | string[]): unknown {
  const text = Array.isArray(value) ? value.join(',') : value;
  switch (key.kind) {
    case 'number':
      return text.trim() === '' ? text : Number(text);
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return text;
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'duration':
      return /^\d+$/.test(text.trim()) ? Number(text) : text;
    default:
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = target;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (data == null) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`config file ${file} must hold an object`);
  return data as Record<string, unknown>;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function describeIssue(issue: z.ZodIssue, sources: Map<string, string>): string {
  const path = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const where = path ? ` in ${path}` : '';
    return `unknown key${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.map((k) => (path ? `${path}.${k}` : k)).join(', ')}`;
  }
  const leaf = CONFIG_KEYS.find((k) => path === k.path || path.startsWith(k.path + '.'));
  const src = sources.get(leaf?.path ?? path);
  // A list entry is named by its index (`ws.allowedOrigins[1]`), so the message points at the entry.
  const index = leaf && /^\.(\d+)$/.exec(path.slice(leaf.path.length))?.[1];
  return `${leaf?.path ?? path}${index ? `[${index}]` : ''}: ${issue.message}${src ? ` (from ${src})` : ''}`;
}

/** Validate an object against the schema; throws ConfigError naming the key. Returns a frozen config. */
export function parseConfig(input: ConfigInput | Record<string, unknown>, sources = new Map<string, string>()): Config {
  const res = configSchema.safeParse(input);
  if (!res.success) {
    throw new ConfigError('invalid config: ' + res.error.issues.map((i) => describeIssue(i, sources)).join('; '));
  }
  return deepFreeze(res.data);
}

export interface LoadOptions {
  /** Config file path (YAML, or JSON by `.json`). Also `HUBCAST_CONFIG`. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by config path (`history.size`), as given on the command line. */
  flags?: Record<string, string | string[] | undefined>;
}

/** defaults < file < environment < flags, validated once, frozen. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const sources = new Map<string, string>();
  const file = opts.file ?? env.HUBCAST_CONFIG;
  const merged: Record<string, unknown> = file ? readFile(file) : {};
  if (file) for (const k of CONFIG_KEYS) sources.set(k.path, file);
  for (const key of CONFIG_KEYS) {
    const v = env[key.env];
    if (v !== undefined) {
      setPath(merged, key.path, coerce(key, v));
      sources.set(key.path, key.env);
    }
  }
  for (const key of CONFIG_KEYS) {
    const v = opts.flags?.[key.path];
    if (v !== undefined) {
      setPath(merged, key.path, coerce(key, v));
      sources.set(key.path, key.flag);
    }
  }
  return parseConfig(merged, sources);
}

/** The value at a dotted path of a config object. */
export function getPath(config: unknown, path: string): unknown {
  let cur = config;
  for (const p of path.split('.')) cur = (cur as Record<string, unknown> | undefined)?.[p];
  return cur;
}
