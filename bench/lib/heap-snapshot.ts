import { readFileSync } from 'node:fs';

/**
 * Where a heap goes: the self sizes of a `.heapsnapshot` (V8's format, as `v8.writeHeapSnapshot()`
 * writes it after a full GC: live objects only), summed by kind — the constructor name for objects,
 * `closure <name>` for functions, `(string)`, `(array) <name>`, `(native) <name>`…
 */

export interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

function groupName(type: string, name: string): string {
  switch (type) {
    case 'object':
      return name;
    case 'closure':
      return `closure ${name || '(anonymous)'}`;
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'array':
      return `(array) ${name}`;
    case 'native':
      return `(native) ${name}`;
    case 'hidden':
      return `(hidden) ${name}`;
    default:
      return `(${type})`;
  }
}

/** Every group of a snapshot file, biggest first, and the total self size. */
export function heapGroups(file: string): { groups: HeapGroup[]; totalBytes: number; nodes: number } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const by = new Map<string, HeapGroup>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!] ?? '?';
    const name = groupName(type, s.strings[s.nodes[i + iName]!] ?? '');
    const size = s.nodes[i + iSize]!;
    total += size;
    let g = by.get(name);
    if (!g) by.set(name, (g = { name, count: 0, bytes: 0 }));
    g.count++;
    g.bytes += size;
  }
  return { groups: [...by.values()].sort((a, b) => b.bytes - a.bytes), totalBytes: total, nodes: s.nodes.length / width };
}
