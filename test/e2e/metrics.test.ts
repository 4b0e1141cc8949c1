import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { metricsText } from '../helpers/e2e.ts';
import { startServer, type Harness } from '../helpers/server.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it.skipIf(process.platform !== 'linux')(
  'GET /metrics serves exactly the metrics of docs/metrics.md, each named hubcast_ once',
  async () => {
    h = await startServer();
    const served = [...(await metricsText(h)).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(served).toContain('hubcast_process_cpu_seconds_total');
    expect(served.filter((n) => !n.startsWith('hubcast_') || n.startsWith('hubcast_process_process_'))).toEqual([]);
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `(hubcast_[a-z0-9_]+)` +\|/gm)].map((m) => m[1]!);
    expect(served.filter((n) => !documented.includes(n))).toEqual([]);
    expect(documented.filter((n) => !served.includes(n))).toEqual([]);
  },
);
