import { afterAll, describe, expect, it } from 'vitest';
import { analyse, Consumer, formatReport, runClusterCheck, type CheckReport } from '../../scripts/cluster-check.ts';
import { CLUSTER_BROKERS, clusterServicesUp, killAll, type Cluster } from '../helpers/cluster.ts';

/**
 * The Jepsen-style checker (scripts/cluster-check.ts), short: ~20 s of faults per broker type on
 * three nodes — kill -9 of a node, a cut of one node's broker link and of another's store link —
 * then 0 lost, 0 duplicated, 0 reordered. Its report is printed for the note. First, the checker's
 * own tests: its analysis flags what it must, and a run on one SQLite node (kill -9 only) passes.
 */

const up = new Map<string, boolean>();
for (const b of CLUSTER_BROKERS) up.set(b, await clusterServicesUp(b));

afterAll(killAll, 30_000);

const OPTIONS = { seconds: 20, leaseS: 2, publishers: 3, consumers: 4, topics: 2 } as const;

function expectClean(r: CheckReport): void {
  process.stdout.write(formatReport(r) + '\n');
  expect(r.acknowledged).toBeGreaterThan(0);
  expect(r.faults.length).toBeGreaterThan(0);
  expect({ lost: r.lost, duplicated: r.duplicated, reordered: r.reordered, missed: r.missed, corrupt: r.corrupt }).toEqual({
    lost: 0,
    duplicated: 0,
    reordered: 0,
    missed: 0,
    corrupt: 0,
  });
  expect(r.violations).toEqual([]);
  expect(r.ok).toBe(true);
}

describe('the checker itself', () => {
  it('flags loss, duplicates, reordering, skipped unacknowledged offsets and wrong content', () => {
    const t = 'check.t0';
    const history = new Map([[t, new Map([1, 2, 3, 4, 5, 6].map((o) => [o, `m${o}`]))]]);
    const acks = [1, 2, 3, 4, 6].map((offset) => ({ topic: t, offset, id: `m${offset}` }));
    const consumer = (deliveries: [number, string][]) => {
      const c = new Consumer({} as Cluster, 'token', [t]);
      for (const [o, id] of deliveries) c.receive(t, o, id);
      return c;
    };
    const report = analyse({
      o: { broker: 'memory', seconds: 1, publishers: 1, consumers: 4, topics: 1, leaseS: 2, settleMs: 1, paceMs: 1 },
      nodes: 1,
      faults: [],
      pub: { acks, gaveUp: ['m5'], rejected: [], statuses: { 202: 5 }, counts: { requests: 6, retries: 0 } },
      history,
      latest: new Map([[t, 6]]),
      consumers: [
        consumer([1, 2, 3, 4, 5, 6].map((o) => [o, `m${o}`])), // clean
        consumer([
          [1, 'm1'],
          [3, 'm3'],
          [2, 'm2'],
          [3, 'm3'],
          [4, 'm4'],
          [5, 'm5'],
        ]), // 2 after 3 (reordered), 3 twice (duplicated), 6 never (lost: acknowledged)
        consumer([
          [1, 'm1'],
          [2, 'm2'],
          [3, 'm3'],
          [4, 'm4'],
          [6, 'm6'],
        ]), // 5 skipped (missed: committed, not acknowledged)
        consumer([
          [1, 'm1'],
          [2, 'm2'],
          [3, 'mX'],
          [4, 'm4'],
          [5, 'm5'],
          [6, 'm6'],
        ]), // wrong message at 3 (corrupt)
      ],
      settleMs: 0,
    });
    expect(report).toMatchObject({ lost: 1, duplicated: 1, reordered: 1, missed: 1, corrupt: 1, unacknowledgedCommitted: 1, ok: false });
    expect(report.violations).toEqual([
      expect.stringMatching(/^consumer 1: 1 duplicate\(s\), 1 out of order on check.t0: 2 after 3 .*; 3 again /),
      expect.stringMatching(/^consumer 1 never received 1 acknowledged offset\(s\) of check.t0: 6 /),
      expect.stringMatching(/^consumer 2 skipped 1 committed, unacknowledged offset\(s\) of check.t0: 5 /),
      expect.stringMatching(/^consumer 3 got mX at check.t0@3, history holds m3/),
    ]);
    expect(formatReport(report)).toMatch(/FAIL$/);
  });

  it('runs on one SQLite node with kill -9 and finds nothing wrong', async () => {
    expectClean(await runClusterCheck({ broker: 'memory', ...OPTIONS, seconds: 8 }));
  }, 120_000);
});

for (const broker of CLUSTER_BROKERS) {
  describe.skipIf(!up.get(broker))(`checker, three nodes, ${broker} broker`, () => {
    it('0 lost, 0 duplicated, 0 reordered through kill -9, a broker cut and a store cut', async () => {
      expectClean(await runClusterCheck({ broker, ...OPTIONS }));
    }, 180_000);
  });
}
