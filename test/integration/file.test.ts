import { appendFile, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FatalSourceError, type Connector } from '../../src/connectors/connector.ts';
import { create, formatFor, settings } from '../../src/connectors/file.ts';
import { recordingContext, type RecordingContext, commonFields } from '../helpers/connector-context.ts';
import { tempDir } from '../helpers/server.ts';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connector(s: Partial<z.input<typeof settings>> & { path: string }, rc?: RecordingContext): Connector {
  const common = commonFields('files', 'file', 'files');
  return create({ ...common, ...settings.parse({ pollMs: 20, ...s }) }, { log: (rc ?? recordingContext()).ctx.log });
}

function start(c: Connector, rc: RecordingContext) {
  const done = c.run(rc.ctx);
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      rc.abort();
      await done;
    },
  };
}

/** Writes a file with an mtime in the past, so it is "stable" at once (two polls with the same size+mtime). */
async function put(path: string, content: string | Buffer): Promise<void> {
  await writeFile(path, content);
  const t = new Date(Date.now() - 5000);
  await utimes(path, t, t);
}

const KEY = (file: string, line: number) => new RegExp(`^${file.replace('.', '\\.')}@\\d+-\\d+:${line}$`);

describe('file connector', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('hubcast-file-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses symbolic links (to a file or a folder outside it): not published, not moved, logged and alerted once', async () => {
    const outside = tempDir('hubcast-outside-');
    await put(join(outside, 'secret.json'), '{"password":"hunter2"}');
    await mkdir(join(outside, 'sub'));
    await put(join(outside, 'sub', 'inner.json'), '{"inner":true}');
    await symlink(join(outside, 'secret.json'), join(dir, 'link.json'));
    await symlink(join(outside, 'sub'), join(dir, 'linked-dir'));
    await put(join(dir, 'ok.json'), '{"ok":1}');
    const rc = recordingContext();
    const run = start(connector({ path: dir }, rc), rc);
    await rc.waitFor(() => rc.records.length === 1, 5000, 'the regular file');
    // Several more polls: still refused, alerted only once per entry.
    await pause(200);
    await run.stop();
    expect(rc.records.map((r) => r.value)).toEqual([{ ok: 1 }]);
    expect(rc.alerts.sort()).toEqual(['file link.json is a symbolic link: refused', 'file linked-dir is a symbolic link: refused']);
    expect(rc.logs.filter((l) => l.msg === 'file refused: not read, not moved').map((l) => l.file)).toEqual(
      expect.arrayContaining(['link.json', 'linked-dir']),
    );
    expect(rc.logs.filter((l) => l.msg === 'file refused: not read, not moved')).toHaveLength(2);
    // Left where they were; the target is untouched.
    expect((await readdir(dir)).sort()).toEqual(['.done', 'link.json', 'linked-dir']);
    expect(await readFile(join(outside, 'secret.json'), 'utf8')).toBe('{"password":"hunter2"}');
    expect(JSON.stringify(rc.records)).not.toContain('hunter2');
    await rm(outside, { recursive: true, force: true });
  });

  it('reads every format into the right records, keys and kinds, then moves each file to .done', async () => {
    await put(join(dir, 'a.json'), '{"id":1,"tags":["x"]}');
    await put(join(dir, 'b.ndjson'), '{"n":1}\n\n{"n":2}\r\nnot json\n{"n":4}');
    await put(join(dir, 'c.csv'), '\uFEFFid,name,note\r\n1,"Smith, J","say ""hi"""\r\n2,plain,"two\nlines"\n\n3,x\n');
    await put(join(dir, 'd.log'), 'first line\n\nthird line\n');
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    await put(join(dir, 'e.bin'), bytes);
    const rc = recordingContext();
    const run = start(connector({ path: dir }, rc), rc);
    await rc.waitFor(() => rc.records.length === 11, 5000, '11 records');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'progress entries removed');
    await run.stop();

    const by = (file: string) => rc.records.filter((r) => (r.meta as { file: string }).file === file);
    const [json] = by('a.json');
    expect(json).toMatchObject({ value: { id: 1, tags: ['x'] }, kind: 'json', meta: { file: 'a.json', line: 0 } });
    expect(json!.key).toMatch(KEY('a.json', 0));

    const nd = by('b.ndjson');
    expect(nd.map((r) => [r.value, r.kind, (r.meta as { line: number }).line])).toEqual([
      [{ n: 1 }, 'json', 1],
      [{ n: 2 }, 'json', 3],
      ['not json', 'text', 4], // passed on (the pipeline dead-letters it), never dropped
      [{ n: 4 }, 'json', 5],
    ]);
    expect(nd[2]!.meta).toMatchObject({ error: 'invalid JSON' });
    expect(nd[0]!.key).toMatch(KEY('b.ndjson', 1));

    const csv = by('c.csv');
    expect(csv.map((r) => [r.value, (r.meta as { line: number }).line])).toEqual([
      [{ id: '1', name: 'Smith, J', note: 'say "hi"' }, 2],
      [{ id: '2', name: 'plain', note: 'two\nlines' }, 3],
      [{ id: '3', name: 'x' }, 6],
    ]);
    expect(csv.every((r) => r.kind === 'json')).toBe(true);

    expect(by('d.log').map((r) => [r.value, r.kind, r.key.replace(/@.*:/, ':')])).toEqual([
      ['first line', 'text', 'd.log:1'],
      ['third line', 'text', 'd.log:3'],
    ]);

    const [bin] = by('e.bin');
    expect(bin!.kind).toBe('binary');
    expect(Buffer.isBuffer(bin!.value) && (bin!.value as Buffer).equals(bytes)).toBe(true);
    expect(bin!.key).toMatch(KEY('e.bin', 0));

    expect((await readdir(dir)).filter((n) => n !== '.done')).toEqual([]);
    expect((await readdir(join(dir, '.done'))).sort()).toEqual(['a.json', 'b.ndjson', 'c.csv', 'd.log', 'e.bin']);
    expect(new Set(rc.records.map((r) => r.key)).size).toBe(11);
    expect(rc.connectedCount).toBe(1);
  });

  it('csv without a header gives arrays; another delimiter; an explicit format overrides the extension', async () => {
    await put(join(dir, 'x.dat'), 'a;"b;c"\n1;2\n');
    const rc = recordingContext();
    const run = start(connector({ path: dir, format: 'csv', csv: { header: false, delimiter: ';' } }, rc), rc);
    await rc.waitFor(() => rc.records.length === 2, 5000, '2 rows');
    await run.stop();
    expect(rc.records.map((r) => r.value)).toEqual([
      ['a', 'b;c'],
      ['1', '2'],
    ]);
  });

  it('after: delete removes the file; glob and dot files select what is taken', async () => {
    await put(join(dir, 'take.ndjson'), '{"a":1}\n');
    await put(join(dir, 'skip.txt'), 'no\n');
    await put(join(dir, '.hidden.ndjson'), '{"a":2}\n');
    const rc = recordingContext();
    const run = start(connector({ path: dir, glob: '*.ndjson', after: 'delete' }, rc), rc);
    await rc.waitFor(() => rc.records.length === 1, 5000, '1 record');
    await pause(100);
    await run.stop();
    expect(rc.records.map((r) => r.value)).toEqual([{ a: 1 }]);
    expect((await readdir(dir)).sort()).toEqual(['.hidden.ndjson', 'skip.txt']); // no .done either
  });

  it('restart mid-file: the second run resumes at the next line; nothing repeated, nothing skipped', async () => {
    const total = 1000;
    const file = join(dir, 'big.ndjson');
    await put(file, Array.from({ length: total }, (_, i) => JSON.stringify({ i: i + 1 })).join('\n') + '\n');

    const first = recordingContext({ abortAfterRecords: 100 }); // "crash" after the first batch was accepted
    await connector({ path: dir, batchSize: 100 }, first).run(first.ctx); // returns on abort
    expect(first.records).toHaveLength(100);
    expect(JSON.parse(first.state.get('progress:big.ndjson')!)).toMatchObject({ lastLineDone: 100 });
    expect(await readdir(dir)).toContain('big.ndjson'); // not finished: not moved

    const second = recordingContext({ state: first.state });
    const run = start(connector({ path: dir, batchSize: 100 }, second), second);
    await second.waitFor(() => second.records.length === total - 100, 5000, 'the rest');
    await second.waitFor(() => !second.state.has('progress:big.ndjson'), 2000, 'progress removed');
    await run.stop();

    const lines = [...first.records, ...second.records].map((r) => (r.meta as { line: number }).line);
    expect(lines).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(second.records[0]!.value).toEqual({ i: 101 });
    expect(new Set([...first.records, ...second.records].map((r) => r.key)).size).toBe(total);
    expect(await readdir(join(dir, '.done'))).toEqual(['big.ndjson']);
  });

  it('a rejected emit leaves the file in place; its lines are emitted again on the next run', async () => {
    await put(join(dir, 'o.ndjson'), '{"a":1}\n{"a":2}\n{"a":3}\n');
    const rc = recordingContext();
    const c = connector({ path: dir, batchSize: 2 }, rc);
    rc.failNextEmit(new Error('store unavailable'));
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect(rc.records).toHaveLength(0);
    expect(await readdir(dir)).toContain('o.ndjson');
    expect(JSON.parse(rc.state.get('progress:o.ndjson')!)).toMatchObject({ lastLineDone: 0 });

    // The second batch fails this time: the first stays done, the file stays put.
    rc.failNextEmit(new Error('store unavailable'), 1);
    await expect(c.run(rc.ctx)).rejects.toThrow('store unavailable');
    expect(rc.records.map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(JSON.parse(rc.state.get('progress:o.ndjson')!)).toMatchObject({ lastLineDone: 2 });
    expect(await readdir(dir)).toContain('o.ndjson');

    const run = start(c, rc);
    await rc.waitFor(() => rc.records.length === 3, 5000, 'line 3');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'done');
    await run.stop();
    expect(rc.records.map((r) => r.value)).toEqual([{ a: 1 }, { a: 2 }, { a: 3 }]);
    expect(rc.attempts.map((b) => b.map((r) => r.value))).toEqual([[{ a: 1 }, { a: 2 }], [{ a: 1 }, { a: 2 }], [{ a: 3 }], [{ a: 3 }]]);
    expect(await readdir(join(dir, '.done'))).toEqual(['o.ndjson']);
  });

  it('a file still being written is not taken until its size and mtime stay the same between two polls', async () => {
    const file = join(dir, 'growing.ndjson');
    const rc = recordingContext();
    const run = start(connector({ path: dir, pollMs: 150 }, rc), rc); // appends come every ~10 ms: never two equal polls
    await writeFile(file, '');
    let n = 0;
    const until = Date.now() + 600;
    while (Date.now() < until) {
      await appendFile(file, JSON.stringify({ n: ++n }) + '\n');
      await pause(10);
      expect(rc.attempts).toHaveLength(0);
    }
    await rc.waitFor(() => rc.records.length > 0, 3000, 'the file once stable');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'done');
    await run.stop();
    expect(rc.records).toHaveLength(n);
    expect(rc.batches.length).toBe(Math.ceil(n / 100));
  });

  it('a file written to while being read is not moved; it is read again as a new file once stable', async () => {
    const file = join(dir, 'w.ndjson');
    await put(file, '{"v":1}\n{"v":2}\n{"v":3}\n');
    let appended = false;
    const rc = recordingContext({
      onEmit: async () => {
        if (appended) return;
        appended = true;
        await appendFile(file, '{"v":4}\n');
      },
    });
    const run = start(connector({ path: dir, batchSize: 1 }, rc), rc);
    await rc.waitFor(() => rc.records.length === 7, 5000, '3 + 4 records');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'done');
    await run.stop();
    expect(rc.records.map((r) => (r.value as { v: number }).v)).toEqual([1, 2, 3, 1, 2, 3, 4]);
    expect(new Set(rc.records.map((r) => r.key.split(':')[0])).size).toBe(2); // two identities
    expect(rc.logs.some((l) => String(l.msg).includes('changed while being read'))).toBe(true);
    expect(await readFile(join(dir, '.done', 'w.ndjson'), 'utf8')).toContain('{"v":4}');
  });

  it('a re-created file of the same name is a new file (new keys)', async () => {
    const rc = recordingContext();
    const run = start(connector({ path: dir }, rc), rc);
    await put(join(dir, 'r.ndjson'), '{"v":1}\n');
    await rc.waitFor(() => rc.records.length === 1, 5000, 'first');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'first done');
    await writeFile(join(dir, 'r.ndjson'), '{"v":1}\n');
    await rc.waitFor(() => rc.records.length === 2, 5000, 'second');
    await rc.waitFor(() => rc.state.size === 0, 2000, 'second done');
    await run.stop();
    expect(rc.records[0]!.key).not.toBe(rc.records[1]!.key);
    expect((await readdir(join(dir, '.done'))).length).toBe(2); // the second did not overwrite the first
  });

  it('honours abort while idle; a missing directory is a FatalSourceError', async () => {
    const rc = recordingContext();
    const run = start(connector({ path: dir, pollMs: 60_000 }, rc), rc);
    await rc.waitFor(() => rc.connectedCount === 1, 2000, 'started');
    const t0 = Date.now();
    await run.stop();
    expect(Date.now() - t0).toBeLessThan(500);

    const err = await connector({ path: join(dir, 'nope') })
      .run(recordingContext().ctx)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalSourceError);
    const notDir = join(dir, 'f');
    await writeFile(notDir, 'x');
    await expect(connector({ path: notDir }).run(recordingContext().ctx)).rejects.toBeInstanceOf(FatalSourceError);
  });

  it('a custom doneDir is created; default formats follow the extension', async () => {
    const done = join(dir, 'archive', 'done');
    await mkdir(join(dir, 'in'));
    await put(join(dir, 'in', 'z.jsonl'), '{"z":1}\n');
    const rc = recordingContext();
    const run = start(connector({ path: join(dir, 'in'), doneDir: done }, rc), rc);
    await rc.waitFor(() => rc.records.length === 1 && rc.state.size === 0, 5000, 'z.jsonl');
    await run.stop();
    expect(await readFile(join(done, 'z.jsonl'), 'utf8')).toBe('{"z":1}\n');
    expect(['a.json', 'a.NDJSON', 'a.jsonl', 'a.csv', 'a.txt', 'a.log', 'a.png', 'noext'].map(formatFor)).toEqual([
      'json',
      'ndjson',
      'ndjson',
      'csv',
      'text',
      'text',
      'binary',
      'binary',
    ]);
    expect(() => connector({ path: dir, glob: 'a/*' })).toThrow(TypeError);
    expect(() => connector({ path: dir, csv: { delimiter: '"' } })).toThrow(TypeError);
    expect(() => connector({ path: dir, doneDir: dir + '/' })).toThrow(TypeError);
  });
});
