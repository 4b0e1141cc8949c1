/**
 * Topic templates: `orders.{{region}}`, `iot.{{path:$meta.topicDots}}`. `{{field}}` is a dot path into
 * the record value; `{{$meta.field}}` into the record's source facts. A missing or non-scalar value is
 * an error (the record goes to the dead-letter store), never an empty segment.
 *
 * A value fills exactly one topic segment: it must match `[A-Za-z0-9_-]+`. A value with a `.`, a
 * wildcard (`*`, `>`) or any other character is an error, so a record cannot steer itself into
 * another part of the topic tree (`orders.{{region}}` with region `eu.internal.admin`). A template
 * that means to insert several segments says so with `{{path:field}}`: the value may then hold
 * segments separated by dots (still no wildcards, no empty segment). The resulting topic is
 * validated in every case.
 */
const PART = /\{\{\s*(path:)?\s*([$A-Za-z0-9_.-]+)\s*\}\}/g;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

export type Template = (value: unknown, meta: Record<string, unknown>) => string;

function lookup(root: unknown, path: string[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Throws when no value could ever make `source` a valid topic (e.g. `orders/{{id}}`, `orders.{{id`). */
export function checkTemplate(source: string, isValidTopic: (t: string) => boolean): void {
  if (!isValidTopic(source.replace(PART, 'x'))) throw new Error(`topic template "${source}" can never give a valid topic`);
}

/** The value quoted for an error message: short, and without control characters. */
const shown = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);

export function compileTemplate(source: string): Template {
  const parts: (string | { meta: boolean; path: string[]; text: string; multi: boolean })[] = [];
  let last = 0;
  for (const m of source.matchAll(PART)) {
    parts.push(source.slice(last, m.index));
    const [head, ...rest] = m[2]!.split('.');
    const multi = m[1] !== undefined;
    const text = `${multi ? 'path:' : ''}${m[2]!}`;
    parts.push(head === '$meta' ? { meta: true, path: rest, text, multi } : { meta: false, path: [head!, ...rest], text, multi });
    last = m.index + m[0].length;
  }
  parts.push(source.slice(last));
  if (parts.length === 1) return () => source;
  return (value, meta) =>
    parts
      .map((p) => {
        if (typeof p === 'string') return p;
        const v = lookup(p.meta ? meta : value, p.path);
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
          throw new Error(`topic template: {{${p.text}}} is ${v === undefined ? 'missing' : 'not a string or number'} in this record`);
        const s = String(v);
        if (p.multi ? !s.split('.').every((seg) => SEGMENT.test(seg)) : !SEGMENT.test(s)) {
          throw new Error(
            p.multi
              ? `topic template: {{${p.text}}} is ${shown(s)}: each of its dot-separated segments must be [A-Za-z0-9_-]+`
              : `topic template: {{${p.text}}} is ${shown(s)}: a value fills one topic segment ([A-Za-z0-9_-]+, no "." or wildcard); write {{path:${p.text}}} to allow several`,
          );
        }
        return s;
      })
      .join('');
}
