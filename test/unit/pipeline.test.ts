import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { compileTemplate } from '../../src/pipeline/template.ts';
import { tempDir } from '../helpers/server.ts';

const run = (steps: Record<string, unknown>[], value: unknown, meta: Record<string, unknown> = {}) =>
  new Pipeline(steps, { where: 'p', connector: 'c' }).run({ value, meta });

describe('pipeline', () => {
  it('filter keeps or drops; map replaces the value; set adds fields; topic sets the topic', async () => {
    expect(await run([{ filter: 'amount > 10' }], { amount: 5 })).toEqual([]);
    const [r] = await run(
      [
        { filter: 'amount > 10' },
        { map: '{"id": id, "total": amount * 2}' },
        { set: { region: '$meta.region', fixed: 7 } },
        { topic: 'orders.{{region}}' },
      ],
      { id: 'a1', amount: 20 },
      { region: 'eu' },
    );
    expect(r).toMatchObject({ value: { id: 'a1', total: 40, region: 'eu', fixed: 7 }, topic: 'orders.eu', kind: 'json' });
  });

  it('a module step may return one, many or no records', async () => {
    const dir = tempDir();
    const mod = join(dir, 'split.mjs');
    writeFileSync(
      mod,
      'export default (r, ctx) => r.value.items.length ? r.value.items.map((v) => ({ value: { ...v, by: ctx.connector } })) : null;',
    );
    const p = new Pipeline([{ module: mod }], { where: 'p', connector: 'shop' });
    await p.load();
    expect((await p.run({ value: { items: [{ n: 1 }, { n: 2 }] }, meta: {} })).map((r) => r.value)).toEqual([
      { n: 1, by: 'shop' },
      { n: 2, by: 'shop' },
    ]);
    expect(await p.run({ value: { items: [] }, meta: {} })).toEqual([]);
  });

  it('invalid steps fail at construction, naming the step', () => {
    expect(() => new Pipeline([{ filter: 'amount >' }], { where: 'connectors[0].pipeline', connector: 'c' })).toThrow(
      /connectors\[0\]\.pipeline\[0\]\.filter: invalid JSONata/,
    );
    expect(() => new Pipeline([{ frobnicate: 'x' }], { where: 'p', connector: 'c' })).toThrow(ConfigError);
    expect(() => new Pipeline([{ module: '/nope/missing.mjs' }], { where: 'p', connector: 'c' })).toThrow(
      /p\[0\]\.module: module not found/,
    );
    expect(() => new Pipeline([{ set: {} }], { where: 'p', connector: 'c' })).toThrow(/p\[0\]\.set/);
  });

  it('a template value fills one segment: dots, wildcards and other characters are refused unless {{path:…}}', async () => {
    const t = compileTemplate('orders.{{region}}');
    expect(t({ region: 'eu' }, {})).toBe('orders.eu');
    for (const region of ['eu.internal.admin', '*', '>', 'eu.>', 'a b', '', 'é']) {
      expect(() => t({ region }, {}), region).toThrow(/\{\{region\}\} is .*: a value fills one topic segment/);
    }
    // Through the pipeline: the step's error is what the dead-letter store records.
    await expect(run([{ topic: 'orders.{{region}}' }], { region: 'eu.internal.admin' })).rejects.toThrow(
      /p\[0\]\.topic: topic template: \{\{region\}\} is "eu\.internal\.admin": a value fills one topic segment/,
    );
    const multi = compileTemplate('iot.{{path:$meta.topicDots}}');
    expect(multi({}, { topicDots: 'site1.room2.temp' })).toBe('iot.site1.room2.temp');
    for (const topicDots of ['a.*', 'a.>', 'a..b', '.a', 'a b'])
      expect(() => multi({}, { topicDots }), topicDots).toThrow(/\{\{path:\$meta\.topicDots\}\} is .*: each of its dot-separated segments/);
  });

  it('run-time errors name the step', async () => {
    await expect(run([{ set: { a: '1' } }], 'not an object')).rejects.toThrow(/p\[0\]\.set: set needs an object value/);
    await expect(run([{ topic: 'orders.{{region}}' }], { id: 1 })).rejects.toThrow(
      /p\[0\]\.topic: topic template: \{\{region\}\} is missing/,
    );
  });
});

describe('topic templates', () => {
  it('fills fields and $meta, and refuses missing or non-scalar values', () => {
    const t = compileTemplate('iot.{{$meta.site}}.{{sensor.kind}}.{{n}}');
    expect(t({ sensor: { kind: 'temp' }, n: 3 }, { site: 'berlin' })).toBe('iot.berlin.temp.3');
    expect(() => t({ sensor: {}, n: 3 }, { site: 'b' })).toThrow(/sensor\.kind/);
    expect(() => t({ sensor: { kind: { x: 1 } }, n: 3 }, { site: 'b' })).toThrow(/not a string or number/);
    expect(compileTemplate('plain.topic')({}, {})).toBe('plain.topic');
  });
});
