import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../logger.ts';
import type { CommonConnectorConfig } from './config.ts';
import { FatalSourceError, sleep, type Connector, type ConnectorContext, type SourceRecord } from './connector.ts';

const FORMATS = ['json', 'ndjson', 'csv', 'text', 'binary'] as const;
type Format = (typeof FORMATS)[number];

export const settings = z
  .object({
    path: z.string().min(1).describe('Directory to watch (not recursive).'),
    glob: z
      .string()
      .min(1)
      .default('*')
      .describe('File names to take, with * and ? wildcards; names starting with a dot only when the glob does.'),
    format: z
      .enum(FORMATS)
      .optional()
      .describe('json | ndjson | csv | text | binary. Default from the extension: .json, .ndjson/.jsonl, .csv, .txt/.log, else binary.'),
    after: z.enum(['move', 'delete']).default('move').describe('What to do with a file once every record of it was accepted.'),
    doneDir: z.string().min(1).optional().describe('Where after: move puts finished files. Default: <path>/.done.'),
    pollMs: z
      .number()
      .int()
      .min(10)
      .default(500)
      .describe('Directory poll interval; a file is taken once its size and mtime did not change between two polls.'),
    batchSize: z.number().int().min(1).max(10_000).default(100).describe('Lines (records) per emit.'),
    csv: z
      .object({
        header: z.boolean().default(true).describe('The first row names the fields: rows become objects (else arrays).'),
        delimiter: z.string().length(1).default(',').describe('Field delimiter.'),
      })
      .strict()
      .default({})
      .describe('CSV options. Quoted fields may hold delimiters, newlines and "" (an escaped quote).'),
  })
  .strict();

export type FileSettings = z.output<typeof settings>;
export type FileConfig = CommonConnectorConfig & FileSettings;

interface Candidate {
  name: string;
  /** size + mtime (ns): tells a re-created file of the same name from the one already (half) done. */
  identity: string;
  mtimeMs: number;
}

/** Durable per file, in ctx.state `progress:<name>`: written before the first emit and after each batch. */
interface Progress {
  identity: string;
  lastLineDone: number;
  /** Every record was accepted; only the move/delete is left. */
  done?: boolean;
}

interface Line {
  line: number;
  text: string;
}

function globRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 's');
}

export function formatFor(name: string): Format {
  switch (extname(name).toLowerCase()) {
    case '.json':
      return 'json';
    case '.ndjson':
    case '.jsonl':
      return 'ndjson';
    case '.csv':
      return 'csv';
    case '.txt':
    case '.log':
      return 'text';
    default:
      return 'binary';
  }
}

const code = (err: unknown) => (err as { code?: string }).code;
const stripBom = (s: string) => (s.charCodeAt(0) === 0xfeff ? s.slice(1) : s);

/**
 * Files are opened without following a symbolic link: a file swapped for a link after the directory
 * scan fails to open (ELOOP) instead of reading what the link points to.
 */
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Physical lines, numbered from 1 (CRLF or LF). Read errors (and abort) propagate: a file is never half-read silently. */
async function* readLines(path: string, signal: AbortSignal): AsyncGenerator<Line> {
  const input = (await open(path, NO_FOLLOW)).createReadStream({ encoding: 'utf8', signal });
  let rest = '';
  let line = 0;
  const take = (text: string): Line => {
    line++;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return { line, text: line === 1 ? stripBom(text) : text };
  };
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) yield take(p);
    }
    if (rest !== '') yield take(rest);
  } finally {
    input.destroy();
  }
}

/** CSV rows (RFC 4180 quoting: "a,b", "say ""hi""", newlines inside quotes), each numbered by the line it starts on. */
async function* readCsvRows(path: string, signal: AbortSignal, delimiter: string): AsyncGenerator<{ line: number; fields: string[] }> {
  const input = (await open(path, NO_FOLLOW)).createReadStream({ encoding: 'utf8', signal });
  let field = '';
  let fieldStarted = false;
  let row: string[] = [];
  let inQuotes = false;
  let quoteSeen = false; // a quote inside quotes: an escaped "" or the closing quote, decided by the next char
  let line = 1;
  let rowLine = 1;
  let first = true;
  const endField = () => {
    row.push(field);
    field = '';
    fieldStarted = false;
  };
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      const rows: { line: number; fields: string[] }[] = [];
      const text = first ? stripBom(chunk) : chunk;
      first = false;
      for (const c of text) {
        if (inQuotes) {
          if (quoteSeen) {
            quoteSeen = false;
            if (c === '"') {
              field += '"';
              continue;
            }
            inQuotes = false; // that was the closing quote; c is read unquoted below
          } else if (c === '"') {
            quoteSeen = true;
            continue;
          } else {
            if (c === '\n') line++;
            field += c;
            continue;
          }
        }
        if (c === '"' && !fieldStarted) {
          inQuotes = true;
          fieldStarted = true;
        } else if (c === delimiter) {
          endField();
        } else if (c === '\n') {
          endField();
          if (!(row.length === 1 && row[0] === '')) rows.push({ line: rowLine, fields: row });
          row = [];
          line++;
          rowLine = line;
        } else if (c !== '\r') {
          field += c;
          fieldStarted = true;
        }
      }
      yield* rows;
    }
    if (fieldStarted || row.length > 0) {
      endField();
      yield { line: rowLine, fields: row };
    }
  } finally {
    input.destroy();
  }
}

class FileConnector implements Connector {
  readonly name: string;
  readonly type = 'file';
  readonly #cfg: FileConfig;
  readonly #log: Logger;
  readonly #match: RegExp;
  readonly #dir: string;
  readonly #doneDir: string;
  /** The watched directory with every link in its path resolved (the operator's choice, trusted). */
  #realDir = '';
  /** Entries refused and already alerted, with why: each is alerted once while it stays there. */
  readonly #refused = new Map<string, string>();

  constructor(cfg: FileConfig, log: Logger) {
    this.name = cfg.name;
    this.#cfg = cfg;
    this.#log = log;
    this.#match = globRegExp(cfg.glob);
    this.#dir = resolve(cfg.path);
    this.#doneDir = resolve(cfg.doneDir ?? join(cfg.path, '.done'));
  }

  async run(ctx: ConnectorContext): Promise<void> {
    const { signal } = ctx;
    if (signal.aborted) return;
    try {
      if (!(await stat(this.#dir)).isDirectory()) throw new FatalSourceError(`file: path ${this.#dir} is not a directory`);
      if (this.#cfg.after === 'move') await mkdir(this.#doneDir, { recursive: true });
      this.#realDir = await realpath(this.#dir);
    } catch (err) {
      throw fsError(err, this.#dir);
    }
    ctx.connected();
    // name → identity at the previous poll: a file is taken when it did not change between two polls.
    let seen = new Map<string, string>();
    try {
      while (!signal.aborted) {
        const next = new Map<string, string>();
        for (const f of await this.#scan(ctx)) {
          if (signal.aborted) break;
          next.set(f.name, f.identity);
          const progress = readProgress(ctx, f.name);
          // A file half done before a restart was stable then: finish it without waiting.
          if (seen.get(f.name) !== f.identity && progress?.identity !== f.identity) continue;
          if (await this.#process(ctx, f, progress)) next.delete(f.name);
        }
        seen = next;
        await sleep(this.#cfg.pollMs, signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw fsError(err, this.#dir);
    }
  }

  /**
   * Matching regular files, oldest first. Symbolic links (to files or folders) and anything whose
   * real path is not directly in the watched directory are refused: a link dropped in the folder must
   * not publish a file from elsewhere.
   */
  async #scan(ctx: ConnectorContext): Promise<Candidate[]> {
    const out: Candidate[] = [];
    const dotGlob = this.#cfg.glob.startsWith('.');
    const names = await readdir(this.#dir);
    for (const name of this.#refused.keys()) if (!names.includes(name)) this.#refused.delete(name);
    for (const name of names) {
      if ((name.startsWith('.') && !dotGlob) || !this.#match.test(name)) continue;
      const path = join(this.#dir, name);
      try {
        const st = await lstat(path, { bigint: true });
        if (st.isSymbolicLink()) {
          this.#refuse(ctx, name, 'is a symbolic link');
          continue;
        }
        if (!st.isFile()) continue;
        if (dirname(await realpath(path)) !== this.#realDir) {
          this.#refuse(ctx, name, 'resolves outside the watched directory');
          continue;
        }
        this.#refused.delete(name);
        out.push({ name, identity: identityOf(st), mtimeMs: Number(st.mtimeMs) });
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err; // gone between readdir and stat
      }
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Emits the file's records (resuming after lastLineDone), then moves/deletes it. True when finished. */
  async #process(ctx: ConnectorContext, f: Candidate, stored: Progress | undefined): Promise<boolean> {
    const path = join(this.#dir, f.name);
    const stateKey = `progress:${f.name}`;
    const progress: Progress = stored?.identity === f.identity ? stored : { identity: f.identity, lastLineDone: 0 };
    const save = () => ctx.state.set(stateKey, JSON.stringify(progress));
    save();
    if (!progress.done) {
      const format = this.#cfg.format ?? formatFor(f.name);
      const prefix = `${f.name}@${f.identity}`;
      try {
        if (format === 'json' || format === 'binary') {
          const buf = await readFile(path, { signal: ctx.signal, flag: NO_FOLLOW });
          const meta = { file: f.name, line: 0 };
          const rec: SourceRecord =
            format === 'binary'
              ? { key: `${prefix}:0`, value: buf, kind: 'binary', meta }
              : this.#jsonRecord(`${prefix}:0`, buf.toString('utf8'), meta);
          await ctx.emit([rec]);
        } else {
          const finished = await this.#emitLines(ctx, path, format, prefix, progress, save);
          if (!finished) return false;
        }
      } catch (err) {
        if (code(err) === 'ELOOP') {
          // Swapped for a symbolic link after the scan: refused like any link.
          this.#refuse(ctx, f.name, 'is a symbolic link');
          ctx.state.delete(stateKey);
          return true;
        }
        if (code(err) === 'ENOENT' && (err as { path?: string }).path === path) {
          // Removed by someone else before we finished: nothing left to read.
          this.#log.warn({ file: f.name }, 'file vanished while being read');
          ctx.state.delete(stateKey);
          return true;
        }
        throw err;
      }
      progress.done = true;
      save();
    }
    if (!(await this.#unchanged(path, f))) {
      // Written to while we read it: not moved (the new lines would be lost); taken again, as a new
      // file, once stable.
      this.#log.warn({ file: f.name }, 'file changed while being read; it will be read again as a new file');
      ctx.state.delete(stateKey);
      return true;
    }
    await this.#finish(path, f);
    ctx.state.delete(stateKey);
    return true;
  }

  /** Logs and alerts (source_refused) once per entry while it stays refused; the entry is left alone. */
  #refuse(ctx: ConnectorContext, name: string, why: string): void {
    if (this.#refused.get(name) === why) return;
    this.#refused.set(name, why);
    this.#log.warn({ file: name, reason: why }, 'file refused: not read, not moved');
    ctx.alert?.(`file ${name} ${why}: refused`);
  }

  async #unchanged(path: string, f: Candidate): Promise<boolean> {
    try {
      const st = await lstat(path, { bigint: true });
      return !st.isSymbolicLink() && identityOf(st) === f.identity;
    } catch (err) {
      if (code(err) === 'ENOENT') return true; // gone: nothing to move
      throw err;
    }
  }

  async #emitLines(
    ctx: ConnectorContext,
    path: string,
    format: 'ndjson' | 'csv' | 'text',
    prefix: string,
    progress: Progress,
    save: () => void,
  ): Promise<boolean> {
    const { signal } = ctx;
    const { batchSize, csv } = this.#cfg;
    const name = basename(path);
    let batch: SourceRecord[] = [];
    let batchLast = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await ctx.emit(batch);
      progress.lastLineDone = batchLast;
      save();
      batch = [];
    };
    const push = async (rec: SourceRecord, line: number) => {
      batch.push(rec);
      batchLast = line;
      if (batch.length >= batchSize) await flush();
    };
    if (format === 'csv') {
      let header: string[] | undefined;
      for await (const { line, fields } of readCsvRows(path, signal, csv.delimiter)) {
        if (csv.header && !header) {
          header = fields;
          continue;
        }
        if (line <= progress.lastLineDone) continue;
        let value: unknown = fields;
        if (header) {
          const obj: Record<string, string> = {};
          fields.forEach((v, i) => (obj[header![i] ?? `_${i + 1}`] = v));
          value = obj;
        }
        await push({ key: `${prefix}:${line}`, value, kind: 'json', meta: { file: name, line } }, line);
        if (signal.aborted) return false;
      }
    } else {
      for await (const { line, text } of readLines(path, signal)) {
        if (line <= progress.lastLineDone || text.trim() === '') continue;
        const key = `${prefix}:${line}`;
        const meta = { file: name, line };
        await push(format === 'text' ? { key, value: text, kind: 'text', meta } : this.#jsonRecord(key, text, meta), line);
        if (signal.aborted) return false;
      }
    }
    // Aborted while reading: the unemitted tail is read again next run (lastLineDone says where).
    if (signal.aborted) return false;
    await flush();
    return true;
  }

  /**
   * Text that is not valid JSON is not dropped: it goes on as a text record with `meta.error`, so the
   * pipeline (or a topic template that needs fields) sends it to the dead-letter store with a reason.
   */
  #jsonRecord(key: string, text: string, meta: { file: string; line: number }): SourceRecord {
    try {
      const json = stripBom(text);
      return { key, value: JSON.parse(json), kind: 'json', raw: Buffer.from(json), meta };
    } catch {
      this.#log.warn({ file: meta.file, line: meta.line }, 'not valid JSON; passed on as text');
      return { key, value: text, kind: 'text', meta: { ...meta, error: 'invalid JSON' } };
    }
  }

  async #finish(path: string, f: Candidate): Promise<void> {
    if (this.#cfg.after === 'delete') {
      await rm(path, { force: true });
      return;
    }
    let target = join(this.#doneDir, f.name);
    if (await exists(target)) {
      const ext = extname(f.name);
      target = join(this.#doneDir, `${f.name.slice(0, f.name.length - ext.length)}.${Date.now()}${ext}`);
    }
    try {
      await rename(path, target);
    } catch (err) {
      if (code(err) === 'ENOENT') return;
      if (code(err) !== 'EXDEV') throw err;
      await copyFile(path, target); // doneDir on another file system
      await rm(path, { force: true });
    }
  }
}

function identityOf(st: { size: bigint; mtimeNs: bigint }): string {
  return `${st.size}-${st.mtimeNs}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function readProgress(ctx: ConnectorContext, name: string): Progress | undefined {
  const raw = ctx.state.get(`progress:${name}`);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as Progress;
  } catch {
    return undefined;
  }
}

/** A missing or forbidden directory is a settings problem retrying cannot fix. */
function fsError(err: unknown, dir: string): Error {
  if (err instanceof FatalSourceError) return err;
  const c = (err as { syscall?: string }).syscall ? code(err) : undefined; // file-system errors only, not an emit rejection
  if (c === 'ENOENT' || c === 'ENOTDIR' || c === 'EACCES' || c === 'EPERM')
    return new FatalSourceError(`file: cannot use ${(err as { path?: string }).path ?? dir} (${c})`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

export function create(cfg: FileConfig, deps: { log: Logger }): Connector {
  if (['"', '\n', '\r'].includes(cfg.csv.delimiter))
    throw new TypeError(`connector ${cfg.name}: csv.delimiter cannot be a quote or a newline`);
  if (cfg.glob.includes('/')) throw new TypeError(`connector ${cfg.name}: glob matches file names; put the directory in path`);
  if (cfg.after === 'move' && cfg.doneDir !== undefined && resolve(cfg.doneDir) === resolve(cfg.path))
    throw new TypeError(`connector ${cfg.name}: doneDir must not be the watched directory itself`);
  return new FileConnector(cfg, deps.log);
}
