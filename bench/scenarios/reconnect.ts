/**
 * Scenario (g) of issue 5: a reconnect storm. N consumers (each its own token) connected and
 * subscribed to one topic; all of them close; K messages are published while nobody is connected;
 * then all N reconnect at once with `since` their last offset and replay the backlog, while a few
 * more messages are published live. Measured: time until every consumer holds the last offset,
 * replayed messages/s, time to `subscribed`; checked: no gap, no duplicate, every `since` recovered,
 * every consumer back in; failed connect attempts (retried) are counted.
 *
 * Flags: `--cpu-prof` (the server runs with --cpu-prof; the notes list its busiest functions).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { cpuMark, disturbanceNote, leastDisturbed, otherLoadPct } from '../lib/disturbance.ts';
import { seedHubcast } from '../lib/hubcast-seed.ts';
import { scrapeMetrics, startHubcast, subdir } from '../lib/hubcast-server.ts';
import { Children, sampleProc } from '../lib/procs.ts';
import { monoMs, sleep } from '../lib/time.ts';
import type { Figure, ScenarioContext, ScenarioResult } from '../lib/types.ts';
import type { StormConfig, StormResult } from './reconnect/protocol.ts';

export const name = 'reconnect';
export const describe =
  'Reconnect storm: 5,000 consumers disconnected while K messages are published, then all reconnect at once with `since` and replay — time until all caught up, replayed messages/s, no gap, no duplicate (issue 5, g).';

const STORM = fileURLToPath(new URL('./reconnect/storm.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOPIC = 'bench.storm';

interface Sizes {
  consumers: number;
  backlog: number;
  live: number;
  liveEveryMs: number;
  stormMs: number;
}
const FULL: Sizes = { consumers: 5000, backlog: 100, live: 20, liveEveryMs: 25, stormMs: 60_000 };
const QUICK: Sizes = { consumers: 500, backlog: 50, live: 10, liveEveryMs: 25, stormMs: 20_000 };

interface Run {
  result: StormResult;
  serverCpuS: number | null;
  rssBeforeMiB: number | null;
  rssPeakMiB: number | null;
  replayedByServer: number | null;
  closedOnServerMs: number | null;
  otherLoad: number | null;
  profile?: ReturnType<typeof hotFunctions>;
  seedMs: number;
}

async function runOnce(ctx: ScenarioContext, s: Sizes, attempt: number): Promise<Run> {
  const dir = subdir(ctx.tmpDir, attempt > 1 ? `hubcast-${attempt}` : 'hubcast');
  const dataDir = subdir(dir, 'data');
  const profDir = ctx.flags.has('--cpu-prof') ? join(dir, 'cpu-prof') : undefined;
  const children = new Children(ctx.log);
  try {
    const seeded = await seedHubcast(dataDir, { tokens: s.consumers, subscribe: ['bench.>'], name: 'bench-reconnect' });
    const hc = await startHubcast(children, {
      name: 'hubcast',
      dataDir,
      logFile: join(dir, 'server.log'),
      ...(profDir ? { cpuProfDir: profDir } : {}),
    });
    const cfg: StormConfig = {
      port: hc.port,
      tokens: seeded.tokens,
      ingestKey: seeded.ingestKey,
      topic: TOPIC,
      connectConcurrency: 64,
      connectTimeoutMs: 15_000,
      warmMessages: 3,
      backlog: s.backlog,
      live: s.live,
      liveEveryMs: s.liveEveryMs,
      dataBytes: 190,
      stormMs: s.stormMs,
      retryMs: 200,
      maxAttempts: 20,
    };
    const w = children.start({ name: 'storm', script: STORM, cpu: 1, ipc: true, logFile: join(dir, 'storm.log') });
    w.send({ type: 'config', config: cfg });
    const ready = await w.next<{ setupMs: number; warmDelivered: number }>('ready', 240_000);
    ctx.log(`  ${s.consumers.toLocaleString('en-US')} consumers subscribed in ${ready.setupMs} ms; closing them`);
    w.send({ type: 'close' });
    await w.next('closed', 60_000);
    // One live connection per token: the storm starts once the server has let go of every connection.
    const closeStart = monoMs();
    let closedOnServerMs: number | null = null;
    while (monoMs() < closeStart + 20_000) {
      if ((await scrapeMetrics(hc.port)).get('hubcast_connections') === 0) {
        closedOnServerMs = Math.round(monoMs() - closeStart);
        break;
      }
      await sleep(50);
    }
    w.send({ type: 'publish' });
    await w.next('published', 120_000);
    const replayed0 = (await scrapeMetrics(hc.port)).get('hubcast_messages_replayed_total') ?? null;
    const rssBeforeMiB = sampleProc(hc.child.pid)?.rssMiB ?? null;
    ctx.log(`  backlog of ${s.backlog} published; storm`);
    const a = sampleProc(hc.child.pid);
    const ma = cpuMark([hc.child.pid, w.pid]);
    w.send({ type: 'storm' });
    // RSS peak while the storm runs (bounded by the storm's own bound).
    let rssPeakMiB = rssBeforeMiB;
    let result: StormResult | undefined;
    const got = w.next<{ result: StormResult }>('result', s.stormMs + 60_000).then((m) => (result = m.result));
    got.catch(() => undefined);
    const until = monoMs() + s.stormMs + 60_000;
    while (!result && monoMs() < until && hc.child.running) {
      const rss = sampleProc(hc.child.pid)?.rssMiB ?? null;
      if (rss !== null && (rssPeakMiB === null || rss > rssPeakMiB)) rssPeakMiB = rss;
      await Promise.race([got, sleep(100)]);
    }
    await got;
    const z = sampleProc(hc.child.pid);
    const mz = cpuMark([hc.child.pid, w.pid]);
    const replayed1 = (await scrapeMetrics(hc.port)).get('hubcast_messages_replayed_total') ?? null;
    if (!hc.child.running) throw new Error('the server exited during the storm');
    let profile: Run['profile'];
    if (profDir) {
      await hc.child.stop(15_000);
      profile = hotFunctions(profDir, ROOT);
    }
    return {
      result: result!,
      serverCpuS: a && z ? z.cpuS - a.cpuS : null,
      rssBeforeMiB,
      rssPeakMiB,
      replayedByServer: replayed0 !== null && replayed1 !== null ? replayed1 - replayed0 : null,
      closedOnServerMs,
      otherLoad: otherLoadPct(ma, mz),
      seedMs: seeded.ms,
      ...(profile ? { profile } : {}),
    };
  } finally {
    await children.stopAll(15_000);
  }
}

const fmtRecord = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${v.toLocaleString('en-US')}`)
    .join(', ');

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const s = ctx.quick ? QUICK : FULL;
  const {
    best: r,
    attempts,
    otherLoad,
  } = await leastDisturbed(
    ctx,
    'reconnect',
    (i) => runOnce(ctx, s, i),
    (x) => x.otherLoad,
  );
  const st = r.result.storm;
  const n = r.result.consumers;
  const expectedReplays = n * (r.result.finalOffset - r.result.sinceOffset);
  const stormS = st.caughtUpMs !== null ? st.caughtUpMs / 1000 : null;
  const failedAttempts = Object.values(st.failures).reduce((a, b) => a + b, 0);
  const figures: Figure[] = [
    {
      key: 'caught_up',
      label: `time until all ${n.toLocaleString('en-US')} consumers caught up`,
      value: st.caughtUpMs,
      unit: 'ms',
      note:
        st.caughtUpMs === null
          ? `${st.behind} consumers still behind after ${s.stormMs / 1000} s`
          : `from the first dial to the last consumer holding offset ${r.result.finalOffset}; each consumer: p50 ${st.caughtUpEachMs.p50?.toFixed(0)} ms, p99 ${st.caughtUpEachMs.p99?.toFixed(0)} ms`,
    },
    {
      key: 'replayed_per_s',
      label: 'messages received per second during the storm (replayed and live)',
      value: stormS ? st.received / stormS : null,
      unit: '/s',
      note: `${st.received.toLocaleString('en-US')} received; ${r.replayedByServer?.toLocaleString('en-US') ?? 'n/a'} replayed from history by the server (hubcast_messages_replayed_total)`,
    },
    {
      key: 'subscribed',
      label: 'time until all were subscribed again',
      value: st.allSubscribedMs,
      unit: 'ms',
      note: `dial to \`subscribed\`: p50 ${st.subscribedMs.p50?.toFixed(0)} ms, p99 ${st.subscribedMs.p99?.toFixed(0) ?? 'n/a'} ms`,
    },
    {
      key: 'failed_attempts',
      label: 'failed reconnect attempts (retried after ~200 ms)',
      value: failedAttempts,
      unit: '',
      ...(failedAttempts ? { note: fmtRecord(st.failures) } : {}),
    },
    {
      key: 'never_connected',
      label: 'consumers that never got back in',
      value: st.neverConnected,
      unit: '',
      target: { text: '0', met: st.neverConnected === 0 },
    },
    {
      key: 'behind',
      label: 'consumers behind the last offset at the end',
      value: st.behind,
      unit: '',
      target: { text: '0', met: st.behind === 0 },
    },
    { key: 'gaps', label: 'gaps (offsets skipped)', value: st.gaps, unit: '', target: { text: '0', met: st.gaps === 0 } },
    { key: 'duplicates', label: 'duplicated messages', value: st.duplicates, unit: '', target: { text: '0', met: st.duplicates === 0 } },
    {
      key: 'unrecovered',
      label: '`subscribed` with recovered: false',
      value: st.unrecovered,
      unit: '',
      target: { text: '0', met: st.unrecovered === 0 },
    },
    {
      key: 'replays',
      label: 'replays expected vs served by the server',
      value: r.replayedByServer,
      unit: '',
      note: `${n.toLocaleString('en-US')} consumers × ${r.result.finalOffset - r.result.sinceOffset} messages after their since = ${expectedReplays.toLocaleString('en-US')} (the live ones during the storm are replays for those not yet back)`,
    },
    {
      key: 'closed_by_server',
      label: 'connections closed by the server during the storm',
      value: Object.values(st.closedByServer).reduce((a, b) => a + b, 0),
      unit: '',
      ...(Object.keys(st.closedByServer).length ? { note: fmtRecord(st.closedByServer) } : {}),
    },
    {
      key: 'server.cpu',
      label: 'server CPU during the storm',
      value: r.serverCpuS !== null && st.caughtUpMs ? (r.serverCpuS / (st.caughtUpMs / 1000)) * 100 : null,
      unit: '%',
      note:
        r.serverCpuS !== null
          ? `${r.serverCpuS.toFixed(2)} s of CPU (storm and its tail), ${st.received ? ((r.serverCpuS * 1e6) / st.received).toFixed(1) : 'n/a'} µs per message received`
          : undefined,
    },
    {
      key: 'server.rss.growth',
      label: 'server RSS growth during the storm (peak − before)',
      value: r.rssPeakMiB !== null && r.rssBeforeMiB !== null ? r.rssPeakMiB - r.rssBeforeMiB : null,
      unit: 'MiB',
      note: `peak ${r.rssPeakMiB?.toFixed(1)} MiB`,
    },
  ].map((f) => (f.note === undefined ? (({ note: _n, ...rest }) => rest)(f) : f)) as Figure[];
  const notes = [
    `Setup: ${n.toLocaleString('en-US')} consumer tokens seeded into the store (${r.seedMs} ms, bench/lib/hubcast-seed.ts); all connected and subscribed to \`${TOPIC}\` in ${r.result.setup.ms} ms (64 at once); ` +
      `${r.result.warmDelivered.toLocaleString('en-US')} of them got the ${3} live warm-up messages. Then every consumer closed (1000); the server had let go of all of them ${r.closedOnServerMs ?? 'n/a'} ms later (hubcast_connections = 0).`,
    `Backlog: ${s.backlog} messages (~190-byte data) POSTed to /entity while nobody was connected (${r.result.backlogPublishMs} ms); history.size is the default 1,000, so every since is within history.`,
    `Storm: all ${n.toLocaleString('en-US')} dial at once (no cap), each with its own token and \`since\` = its last offset (${r.result.sinceOffset}) and epoch; ` +
      `${s.live} more messages published live during the storm, one every ${s.liveEveryMs} ms (${st.liveAccepted} accepted). A failed attempt (refused, reset, timeout 15 s) is retried after ~200 ms, at most 20 times. ` +
      `One worker on CPU 1 (lean WebSocket client) checks every offset: exactly last + 1, else a gap (jump) or a duplicate (old).`,
    disturbanceNote(otherLoad, attempts),
  ];
  if (r.profile?.functions.length)
    notes.push(
      `CPU profile of the server's main thread (whole run: setup, backlog, storm; ${(r.profile.busyMs / 1000).toFixed(1)} s busy), self time as a share of busy time: ` +
        r.profile.functions
          .slice(0, 15)
          .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
          .join('; '),
    );
  return {
    variants: [
      {
        name: 'hubcast',
        label: 'Hubcast',
        description: '`hubcast start`, default config (store.synchronous=full, history.size 1,000).',
        expect: 'pass',
        figures,
        notes: [],
        raw: r,
      },
    ],
    notes,
  };
}
