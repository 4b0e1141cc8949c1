/**
 * Topic templates: `orders.{{region}}`, `iot.{{$meta.topicDots}}`. `{{path}}` is a dot path into the
 * record value; `{{$meta.path}}` into the record's source facts. A missing or non-scalar value is an
 * error (the record goes to the dead-letter store), never an empty segment.
 */
const PART = /\{\{\s*([$A-Za-z0-9_.-]+)\s*\}\}/g;

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

export function compileTemplate(source: string): Template {
  const parts: (string | { meta: boolean; path: string[]; text: string })[] = [];
  let last = 0;
  for (const m of source.matchAll(PART)) {
    parts.push(source.slice(last, m.index));
    const [head, ...rest] = m[1]!.split('.');
    parts.push(head === '$meta' ? { meta: true, path: rest, text: m[1]! } : { meta: false, path: [head!, ...rest], text: m[1]! });
    last = m.index + m[0].length;
  }
  parts.push(source.slice(last));
  if (parts.length === 1) return () => source;
  return (value, meta) =>
    parts
      .map((p) => {
        if (typeof p === 'string') return p;
        const v = lookup(p.meta ? meta : value, p.path);
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
        throw new Error(`topic template: {{${p.text}}} is ${v === undefined ? 'missing' : 'not a string or number'} in this record`);
      })
      .join('');
}
