import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import jsonata from 'jsonata';
import { ConfigError } from '../core/errors.ts';
import type { PayloadKind } from '../store/store.ts';
import { compileTemplate, type Template } from './template.ts';

/**
 * The Process layer: an ordered list of steps applied to every record of a connector.
 *
 * - `filter: <JSONata>`: keeps the record when the expression is truthy.
 * - `map: <JSONata>`: the expression's result becomes the record value (the payload).
 * - `set: { field: <JSONata>, … }`: adds or replaces fields of an object value.
 * - `topic: <template>`: the record's topic, e.g. `orders.{{region}}` (else the connector's `topic`).
 * - `module: <path>`: a JS/TS module whose default export (or `transform`) is
 *   `(record, ctx) => record | record[] | null` (may be async), for logic that needs code.
 *
 * Expressions see the record value as input and the source facts as `$meta`. Invalid expressions,
 * templates or module paths fail config validation, naming the step. A step that throws at run time
 * sends the record to the dead-letter store with the reason.
 */
export interface PipelineRecord {
  value: unknown;
  meta: Record<string, unknown>;
  topic?: string;
  kind?: PayloadKind;
}

export type StepConfig = Record<string, unknown>;

export interface ModuleContext {
  connector: string;
}

type Transform = (
  record: PipelineRecord,
  ctx: ModuleContext,
) => PipelineRecord | PipelineRecord[] | null | undefined | Promise<PipelineRecord | PipelineRecord[] | null | undefined>;

type Step =
  | { kind: 'filter'; where: string; expr: jsonata.Expression }
  | { kind: 'map'; where: string; expr: jsonata.Expression }
  | { kind: 'set'; where: string; fields: [string, jsonata.Expression | unknown][] }
  | { kind: 'topic'; where: string; template: Template }
  | { kind: 'module'; where: string; path: string; fn?: Transform };

const STEP_KINDS = ['filter', 'map', 'set', 'topic', 'module'] as const;

function expression(source: unknown, where: string): jsonata.Expression {
  if (typeof source !== 'string' || source.trim() === '')
    throw new ConfigError(`${where}: expected a JSONata expression (a non-empty string)`);
  try {
    return jsonata(source);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    throw new ConfigError(
      `${where}: invalid JSONata expression: ${e.message ?? String(err)}${e.position !== undefined ? ` (at ${e.position})` : ''}`,
    );
  }
}

export class Pipeline {
  readonly #steps: Step[];
  readonly #connector: string;

  /** Compiles the steps; throws ConfigError naming the step (`connectors[0].pipeline[2].filter: …`). */
  constructor(steps: readonly StepConfig[], opts: { where: string; connector: string; baseDir?: string }) {
    this.#connector = opts.connector;
    this.#steps = steps.map((raw, i) => {
      const keys = Object.keys(raw);
      const kind = keys[0] as (typeof STEP_KINDS)[number];
      const where = `${opts.where}[${i}]`;
      if (keys.length !== 1 || !STEP_KINDS.includes(kind)) {
        throw new ConfigError(
          `${where}: a step is one of ${STEP_KINDS.map((k) => `{${k}: …}`).join(', ')}; got keys ${JSON.stringify(keys)}`,
        );
      }
      const v = raw[kind];
      const at = `${where}.${kind}`;
      switch (kind) {
        case 'filter':
        case 'map':
          return { kind, where: at, expr: expression(v, at) };
        case 'set': {
          if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length === 0) {
            throw new ConfigError(`${at}: expected an object of field: <JSONata expression>`);
          }
          return {
            kind,
            where: at,
            fields: Object.entries(v).map(([f, e]) => [f, typeof e === 'string' ? expression(e, `${at}.${f}`) : e]),
          };
        }
        case 'topic':
          if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: expected a topic template such as orders.{{region}}`);
          return { kind, where: at, template: compileTemplate(v) };
        case 'module': {
          if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: expected a path to a JS/TS module`);
          const path = isAbsolute(v) ? v : resolve(opts.baseDir ?? process.cwd(), v);
          if (!existsSync(path)) throw new ConfigError(`${at}: module not found: ${path}`);
          return { kind, where: at, path };
        }
      }
    });
  }

  get length(): number {
    return this.#steps.length;
  }

  /** No step can change a record's value (only `filter` and `topic` steps, or none). */
  get preservesValue(): boolean {
    return this.#steps.every((s) => s.kind === 'filter' || s.kind === 'topic');
  }

  /** Imports the `module` steps (once, before the first record). */
  async load(): Promise<void> {
    for (const s of this.#steps) {
      if (s.kind !== 'module' || s.fn) continue;
      const mod = (await import(pathToFileURL(s.path).href)) as { default?: unknown; transform?: unknown };
      const fn = typeof mod.default === 'function' ? mod.default : mod.transform;
      if (typeof fn !== 'function') throw new ConfigError(`${s.where}: ${s.path} exports no function (default export or "transform")`);
      s.fn = fn as Transform;
    }
  }

  /** Runs every step; returns the records to publish (none when filtered out). Throws on a step error. */
  async run(input: PipelineRecord): Promise<PipelineRecord[]> {
    let records: PipelineRecord[] = [input];
    for (const step of this.#steps) {
      const next: PipelineRecord[] = [];
      for (const r of records) {
        try {
          next.push(...(await this.#apply(step, r)));
        } catch (err) {
          throw new Error(`${step.where}: ${(err as Error).message ?? String(err)}`, { cause: err });
        }
      }
      records = next;
      if (records.length === 0) break;
    }
    return records;
  }

  async #apply(step: Step, r: PipelineRecord): Promise<PipelineRecord[]> {
    const bindings = { meta: r.meta };
    switch (step.kind) {
      case 'filter':
        return (await step.expr.evaluate(r.value, bindings)) ? [r] : [];
      case 'map': {
        const value: unknown = await step.expr.evaluate(r.value, bindings);
        if (value === undefined) throw new Error('map produced no value');
        return [{ ...r, value, kind: Buffer.isBuffer(value) ? 'binary' : 'json' }];
      }
      case 'set': {
        if (typeof r.value !== 'object' || r.value === null || Array.isArray(r.value) || Buffer.isBuffer(r.value)) {
          throw new Error('set needs an object value');
        }
        const value: Record<string, unknown> = { ...(r.value as Record<string, unknown>) };
        for (const [f, e] of step.fields) {
          value[f] =
            typeof e === 'object' && e !== null && 'evaluate' in e ? await (e as jsonata.Expression).evaluate(r.value, bindings) : e;
        }
        return [{ ...r, value, kind: 'json' }];
      }
      case 'topic':
        return [{ ...r, topic: step.template(r.value, r.meta) }];
      case 'module': {
        const out = await step.fn!(r, { connector: this.#connector });
        if (out === null || out === undefined) return [];
        const list = Array.isArray(out) ? out : [out];
        return list.map((o) => ({ ...o, meta: o.meta ?? r.meta }));
      }
    }
  }
}
