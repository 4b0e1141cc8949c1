/**
 * The flood scenario of issue 3: bogus-token WebSocket upgrades at a fixed rate from 20 loopback
 * addresses while 50 legitimate consumers receive a steady publication and keep reconnecting.
 *
 * Processes: the Hubcast server (CPU 0), the legitimate side and the attacker (workers, CPU 1), this
 * orchestrator (SMTP sink for the alert e-mails, /proc sampling). Timeline, shared through a
 * CLOCK_MONOTONIC t0: warm-up, baseline (no flood), flood, settle; then a bounded drain in which
 * every consumer must catch up with the last accepted message.
 *
 * Variants (`--variants=a,b`; default: all three, or `hubcast` alone with --quick; `--slow-hash`:
 * hubcast and slow-hash):
 *   hubcast    the normal build, default per-IP failure budget
 *   slow-hash  bench/lib/slow-hash-server.ts (scrypt before every token lookup), budget off
 *   no-budget  the normal build, budget off: the cheap rejection path alone
 * `--cpu-prof`: the server runs with --cpu-prof; the report lists its busiest functions.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { machineCpu, waitForQuiet } from '../lib/machine.ts';
import { CLI_MAIN, envOf, hasConfigKey, hubcastCli, SLOW_HASH_SERVER } from '../lib/hubcast.ts';
import { Children, freePort, sampleProc, waitForHttp, type ProcSample } from '../lib/procs.ts';
import { SmtpSink, type SunkMail } from '../lib/smtp-sink.ts';
import type { Summary } from '../lib/stats.ts';
import { monoMs, sleep, sleepUntil } from '../lib/time.ts';
import type { Figure, ScenarioContext, ScenarioResult, VariantResult } from '../lib/types.ts';
import { bounds, type AttackConfig, type AttackResult, type LegitConfig, type LegitResult, type Phases } from './flood/protocol.ts';

export const name = 'flood';
export const describe =
  'Bogus-token upgrade flood from 20 loopback addresses while 50 legitimate consumers receive 200 msg/s and reconnect with `since` (issue 3, Proof).';

const LEGIT = fileURLToPath(new URL('./flood/legit.ts', import.meta.url));
const ATTACK = fileURLToPath(new URL('./flood/attack.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const TOPIC = 'bench.flood';
const SOURCES = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 2}`);
const NO_BUDGET = '1000000';
const GROUP_WAIT_S = 2;
const REPEAT_S = 600;
const MAX_RSS_GROWTH_MIB = 64;
const MAX_P99_RATIO = 5;

interface Variant {
  name: string;
  label: string;
  description: string;
  slowHash: boolean;
  budget: boolean;
  expect: 'pass' | 'fail';
}

const VARIANTS: Record<string, Variant> = {
  hubcast: {
    name: 'hubcast',
    label: 'Hubcast',
    description: 'The normal build (`hubcast start`), default per-IP failure budget (limits.authFailures: 30/min, burst 60).',
    slowHash: false,
    budget: true,
    expect: 'pass',
  },
  'slow-hash': {
    name: 'slow-hash',
    label: 'slow hash, no budget',
    description:
      'Bench-only build (bench/lib/slow-hash-server.ts): a synchronous scrypt (N=16384) before every token lookup, and the failure ' +
      `budget raised to ${NO_BUDGET}/min (a build without it). Expected to fail: the scenario must catch it.`,
    slowHash: true,
    budget: false,
    expect: 'fail',
  },
  'no-budget': {
    name: 'no-budget',
    label: 'Hubcast, no budget',
    description: `The normal build with the failure budget raised to ${NO_BUDGET}/min: every bogus token gets a format check and a SHA-256 lookup (401).`,
    slowHash: false,
    budget: false,
    expect: 'pass',
  },
};

interface Sizes {
  phases: Phases;
  attackRate: number;
  consumers: number;
  publishRate: number;
}

const FULL: Sizes = {
  phases: { warmMs: 2000, baseMs: 5000, floodMs: 15000, settleMs: 3000 },
  attackRate: 1500,
  consumers: 50,
  publishRate: 200,
};
const QUICK: Sizes = {
  phases: { warmMs: 2000, baseMs: 3000, floodMs: 3000, settleMs: 3000 },
  attackRate: 300,
  consumers: 50,
  publishRate: 200,
};

function pickVariants(ctx: ScenarioContext): Variant[] {
  const explicit = [...ctx.flags].find((f) => f.startsWith('--variants='));
  let names: string[];
  if (explicit) names = explicit.slice('--variants='.length).split(',').filter(Boolean);
  else if (ctx.flags.has('--slow-hash')) names = ['hubcast', 'slow-hash'];
  else names = ctx.quick ? ['hubcast'] : ['hubcast', 'slow-hash', 'no-budget'];
  return names.map((n) => {
    const v = VARIANTS[n];
    if (!v) throw new Error(`unknown flood variant "${n}"; known: ${Object.keys(VARIANTS).join(', ')}`);
    return v;
  });
}

export async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const sizes = structuredClone(ctx.quick ? QUICK : FULL);
  // `--flood-s=N`: a longer (or shorter) flood, e.g. to see whether memory levels off.
  const floodS = [...ctx.flags].find((f) => f.startsWith('--flood-s='));
  if (floodS) {
    const n = Number(floodS.slice('--flood-s='.length));
    if (!Number.isInteger(n) || n < 1 || n > 600) throw new Error('--flood-s=N takes whole seconds, 1..600');
    sizes.phases.floodMs = n * 1000;
  }
  const variants = pickVariants(ctx);
  const results: VariantResult[] = [];
  // Other work on this 2-core machine colours latency figures: a run disturbed by more than
  // MAX_OTHER_LOAD% of a core (measured from /proc/stat) is repeated, at most `tries` times in all,
  // and the least disturbed run is kept.
  const tries = ctx.quick ? 1 : 3;
  for (const v of variants) {
    let best: { result: VariantResult; other: number } | undefined;
    // A build expected to fail is not re-run: interference cannot make it pass.
    const maxTries = v.expect === 'fail' ? 1 : tries;
    for (let i = 1; i <= maxTries; i++) {
      ctx.log(`-- variant ${v.name}${i > 1 ? ` (run ${i} of at most ${maxTries})` : ''}: ${v.description}`);
      const result = await runVariant(ctx, v, sizes, i);
      const other = (result.raw as { otherLoad: number }).otherLoad;
      if (!best || other < best.other) best = { result, other };
      if (other <= MAX_OTHER_LOAD) break;
      ctx.log(`  other processes used ${other}% of a core during the measurement`);
    }
    if (best!.other > MAX_OTHER_LOAD)
      best!.result.notes.push(
        `Other processes used ${best!.other}% of a core during the baseline or the flood even in the least disturbed of ${maxTries} run(s): latency figures are coloured by it.`,
      );
    results.push(best!.result);
  }
  const b = bounds(sizes.phases);
  const s = (ms: number) => `${ms / 1000} s`;
  return {
    variants: results,
    notes: [
      `Timeline: warm-up ${s(sizes.phases.warmMs)}, baseline ${s(sizes.phases.baseMs)} (no flood), flood ${s(sizes.phases.floodMs)}, ` +
        `settle ${s(sizes.phases.settleMs)}, then a drain of at most 15 s in which every consumer must reach the last accepted offset. ` +
        `Phases are timed from one CLOCK_MONOTONIC t0 shared by all processes (flood from ${s(b.floodStart)} to ${s(b.floodEnd)}).`,
      `Legitimate side: ${sizes.consumers} consumers from 127.0.0.1, each registered once (POST /consumers), subscribed to \`${TOPIC}\`; ` +
        `every 200 ms one of them closes (1000) and reconnects with the same token and \`since\` its last offset. A connect is an ` +
        `upgrade plus \`subscribed\`; any non-101 answer, error or more than 5 s is a failed connect. ` +
        `A publisher POSTs /entity at ${sizes.publishRate} msg/s on a fixed schedule with its process.hrtime.bigint() in the payload; ` +
        `delivery latency = receive time − that stamp (same machine, CLOCK_MONOTONIC), every delivery including replays, grouped by the phase the message was published in.`,
      `Attacker: raw TCP upgrade requests to /ws with \`Authorization: Bearer <random 43-char base64url>\` (passes the format check) from ` +
        `127.0.0.2–127.0.0.21 round robin, i-th attempt at flood start + i/rate, at most 500 in flight, status line read then closed, 5 s timeout.`,
      `Alerts: e-mail to an in-bench SMTP sink, alerts.groupWaitS=${GROUP_WAIT_S}, alerts.repeatS=${REPEAT_S}. RSS from /proc/<pid>/status of the server; growth = peak during flood and settle − RSS at flood start.`,
    ],
  };
}

/** CPU used by processes other than the bench and the server between two ticks, % of one core. */
function otherLoad(ticks: Tick[], from: number, to: number): number | null {
  const a = ticks.find((t) => t.relMs === from);
  const z = ticks.find((t) => t.relMs === to);
  if (!a?.machine || !z?.machine) return null;
  const ours =
    (['server', 'legit', 'attack'] as const).reduce((n, w) => n + ((z[w]?.cpuS ?? 0) - (a[w]?.cpuS ?? 0)), 0) + (z.selfS - a.selfS);
  return Math.max(0, Math.round(((z.machine.busyS - a.machine.busyS - ours) / ((to - from) / 1000)) * 100));
}

/** Other load above this (% of one core) during the baseline or the flood: the variant is run again. */
const MAX_OTHER_LOAD = 25;

interface Tick {
  relMs: number;
  server: ProcSample | null;
  legit: ProcSample | null;
  attack: ProcSample | null;
  /** The whole machine (all cores) and this orchestrator, CPU seconds so far. */
  machine: { busyS: number; totalS: number } | null;
  selfS: number;
}

async function runVariant(ctx: ScenarioContext, v: Variant, sizes: Sizes, attempt: number): Promise<VariantResult> {
  const { phases } = sizes;
  const b = bounds(phases);
  const dir = join(ctx.tmpDir, attempt > 1 ? `${v.name}-${attempt}` : v.name);
  const dataDir = join(dir, 'data');
  const profDir = join(dir, 'cpu-prof');
  mkdirSync(dataDir, { recursive: true });
  const notes: string[] = [];
  const quiet = await waitForQuiet(ctx.quick ? 15_000 : 90_000, 0.15, ctx.log);
  if (quiet !== null && quiet >= 0.15)
    notes.push(
      `The machine was busy before this run (${Math.round(quiet * 100)}% of all cores used by other processes): figures may be coloured by it.`,
    );
  const children = new Children(ctx.log);
  const sink = await SmtpSink.start();
  try {
    const client = await hubcastCli<{ client_id: string; client_secret: string }>(
      ['clients', 'create', '--name', 'bench-flood', '--subscribe', TOPIC],
      dataDir,
    );
    const key = await hubcastCli<{ key: string }>(['keys', 'create', '--name', 'bench-flood'], dataDir);

    const alertKeys = ['alerts.email.smtpUrl', 'alerts.email.to', 'alerts.groupWaitS', 'alerts.repeatS'];
    const withMail = alertKeys.every(hasConfigKey);
    const env: Record<string, string> = {};
    if (withMail) {
      env[envOf('alerts.email.smtpUrl')] = sink.url;
      env[envOf('alerts.email.to')] = 'devops@bench.invalid';
      env[envOf('alerts.groupWaitS')] = String(GROUP_WAIT_S);
      env[envOf('alerts.repeatS')] = String(REPEAT_S);
    } else notes.push('The alerts.* config keys are not in this build: e-mails are n/a.');
    if (!v.budget) {
      env[envOf('limits.authFailures.perMinute')] = NO_BUDGET;
      env[envOf('limits.authFailures.burst')] = NO_BUDGET;
    }
    const port = await freePort();
    const profiling = ctx.flags.has('--cpu-prof');
    if (profiling) mkdirSync(profDir, { recursive: true });
    const server = children.start({
      name: `server(${v.name})`,
      script: v.slowHash ? SLOW_HASH_SERVER : CLI_MAIN,
      args: [...(v.slowHash ? [] : ['start']), '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir],
      nodeArgs: profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
      cpu: 0,
      env,
      logFile: join(dir, 'server.log'),
    });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, server);

    const legitCfg: LegitConfig = {
      port,
      clientId: client.client_id,
      clientSecret: client.client_secret,
      ingestKey: key.key,
      topic: TOPIC,
      consumers: sizes.consumers,
      publishRate: sizes.publishRate,
      maxPublishInFlight: 200,
      reconnectEveryMs: 200,
      connectTimeoutMs: 5000,
      drainMs: 15_000,
      phases,
    };
    const attackCfg: AttackConfig = {
      port,
      sources: SOURCES,
      rate: sizes.attackRate,
      durationMs: phases.floodMs,
      startMs: b.floodStart,
      maxInFlight: 500,
      timeoutMs: 5000,
    };
    const legit = children.start({ name: 'legit', script: LEGIT, cpu: 1, ipc: true, logFile: join(dir, 'legit.log') });
    const attack = children.start({ name: 'attack', script: ATTACK, cpu: 1, ipc: true, logFile: join(dir, 'attack.log') });
    legit.send({ type: 'config', config: legitCfg });
    attack.send({ type: 'config', config: attackCfg });
    const ready = await legit.next<{ registerMs: number }>('ready', 120_000);
    await attack.next('ready', 30_000);
    ctx.log(`  ${sizes.consumers} consumers registered (${ready.registerMs} ms) and subscribed; go`);

    const t0Ns = process.hrtime.bigint() + 500_000_000n;
    const t0 = Number(t0Ns) / 1e6;
    legit.send({ type: 'go', t0: t0Ns.toString() });
    attack.send({ type: 'go', t0: t0Ns.toString() });

    // /proc samples every 250 ms; the phase boundaries are multiples of it.
    const ticks: Tick[] = [];
    for (let relMs = 0; relMs <= b.end; relMs += 250) {
      await sleepUntil(t0 + relMs);
      const self = process.cpuUsage();
      ticks.push({
        relMs,
        server: sampleProc(server.pid),
        legit: sampleProc(legit.pid),
        attack: sampleProc(attack.pid),
        machine: machineCpu(),
        selfS: (self.user + self.system) / 1e6,
      });
      if (relMs === b.floodStart) ctx.log('  flood');
      if (relMs === b.floodEnd) ctx.log('  settle');
      if (!server.running) throw new Error(`the server exited during the run: ${JSON.stringify(await server.exited)}`);
    }
    ctx.log('  drain');
    const attackRes = (await attack.next<{ result: AttackResult }>('result', 30_000)).result;
    const legitRes = (await legit.next<{ result: LegitResult }>('result', legitCfg.drainMs + 30_000)).result;
    const afterDrain = sampleProc(server.pid);

    // The first invalid_token digest is due groupWaitS after the flood began; give it a little longer if it is not in yet.
    const firstDue = t0 + b.floodStart + GROUP_WAIT_S * 1000 + 5000;
    while (withMail && !sink.mails.some((m) => m.kind === 'invalid_token') && monoMs() < firstDue) await sleep(100);
    const mailsRunning = sink.mails.filter((m) => m.atMs >= t0).slice();
    const runningUntil = monoMs();
    const stop = await server.stop(15_000);
    await sleep(withMail ? 1500 : 0);
    const mailsAtStop = sink.mails.filter((m) => m.atMs > runningUntil);

    const prof = profiling ? hotFunctions(profDir, ROOT) : undefined;
    if (prof?.functions.length) {
      notes.push(
        `CPU profile of the server's main thread (whole run, ${(prof.sampledMs / 1000).toFixed(0)} s sampled, ` +
          `${(prof.busyMs / 1000).toFixed(1)} s busy), self time as a share of busy time: ` +
          prof.functions
            .slice(0, 12)
            .map((f) => `${f.name} ${(f.share * 100).toFixed(1)}%`)
            .join('; '),
      );
    }

    const figures = buildFigures({
      v,
      sizes,
      ctx,
      ticks,
      attack: attackRes,
      legit: legitRes,
      withMail,
      mailsRunning,
      mailsAtStop,
      t0,
      runningUntil,
    });
    if (stop.forced) notes.push(`The server did not exit within 15 s of SIGTERM and was killed.`);
    return {
      name: v.name,
      label: v.label,
      description: v.description,
      expect: v.expect,
      figures,
      notes,
      raw: {
        sizes,
        attack: attackRes,
        legit: legitRes,
        ticks,
        otherLoad: Math.max(otherLoad(ticks, b.baseStart, b.floodStart) ?? 0, otherLoad(ticks, b.floodStart, b.floodEnd) ?? 0),
        quietBefore: quiet,
        afterDrain,
        mails: { running: mailsRunning.map(mailRaw(t0)), atStop: mailsAtStop.map(mailRaw(t0)) },
        serverStop: stop,
        ...(prof ? { cpuProfile: prof } : {}),
      },
    };
  } finally {
    await children.stopAll(5000);
    await sink.stop();
  }
}

const mailRaw = (t0: number) => (m: SunkMail) => ({ atS: Math.round((m.atMs - t0) / 100) / 10, kind: m.kind, subject: m.subject });

interface FigureInput {
  v: Variant;
  sizes: Sizes;
  ctx: ScenarioContext;
  ticks: Tick[];
  attack: AttackResult;
  legit: LegitResult;
  withMail: boolean;
  mailsRunning: SunkMail[];
  mailsAtStop: SunkMail[];
  t0: number;
  runningUntil: number;
}

const breakdown = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k}: ${n.toLocaleString('en-US')}`)
    .join(', ');

function buildFigures(x: FigureInput): Figure[] {
  const { sizes, attack, legit, ticks, ctx } = x;
  const quick = ctx.quick;
  const b = bounds(sizes.phases);
  const floodS = sizes.phases.floodMs / 1000;
  const at = (relMs: number) => ticks.find((t) => t.relMs === relMs);
  const cpuPct = (who: 'server' | 'legit' | 'attack', from: number, to: number) => {
    const a = at(from)?.[who];
    const z = at(to)?.[who];
    return a && z ? Math.round(((z.cpuS - a.cpuS) / ((to - from) / 1000)) * 100) : null;
  };

  const otherPct = () => otherLoad(ticks, b.floodStart, b.floodEnd);

  // Attack side.
  const status = attack.byStatus;
  const n401 = status['401'] ?? 0;
  const n429 = status['429'] ?? 0;
  const otherAnswers = Object.entries(status).filter(([s]) => s !== '401' && s !== '429');
  const nOther = otherAnswers.reduce((n, [, c]) => n + c, 0);
  const nErrors = Object.values(attack.errors).reduce((n, c) => n + c, 0);
  const offered = attack.sent / floodS;
  const rejected = (n401 + n429) / floodS;
  const rateMet = offered >= sizes.attackRate * 0.995 && rejected >= sizes.attackRate * 0.995;

  // Legitimate side.
  const failures = Object.values(legit.connects.failures).reduce((n, c) => n + c, 0);
  const byPhase = breakdown(legit.connects.failuresByPhase as Record<string, number>);
  const d = legit.deliveryMs;
  const base: Summary | undefined = d.baseline;
  const flood: Summary | undefined = d.flood;
  const p99Ratio = base?.p99 && flood?.p99 ? flood.p99 / base.p99 : null;

  // Memory.
  const rssAt = (rel: number) => at(rel)?.server?.rssMiB ?? null;
  const rssBefore = rssAt(b.floodStart);
  const rssAfter = rssAt(b.end);
  const during = ticks.filter((t) => t.relMs >= b.floodStart && t.server).map((t) => t.server!.rssMiB);
  const rssPeak = during.length ? Math.max(...during) : null;
  const growth = rssPeak !== null && rssBefore !== null ? rssPeak - rssBefore : null;

  // Mail.
  const invalid = x.mailsRunning.filter((m) => m.kind === 'invalid_token');
  const firstEventAt = x.t0 + b.floodStart;
  const windows = 1 + Math.max(0, Math.floor((x.runningUntil - firstEventAt - GROUP_WAIT_S * 1000) / (REPEAT_S * 1000)));
  const kinds: Record<string, number> = {};
  for (const m of x.mailsRunning) kinds[m.kind || '(none)'] = (kinds[m.kind || '(none)'] ?? 0) + 1;
  const otherKinds = Object.fromEntries(Object.entries(kinds).filter(([k]) => k !== 'invalid_token'));
  const mailNote = x.withMail
    ? [
        invalid.map((m) => `"${m.subject}" at ${((m.atMs - firstEventAt) / 1000).toFixed(1)} s into the flood`).join('; ') || 'none',
        `windows elapsed: ${windows}`,
        x.mailsAtStop.length ? `+${x.mailsAtStop.length} sent at shutdown: ${x.mailsAtStop.map((m) => `"${m.subject}"`).join('; ')}` : '',
      ]
        .filter(Boolean)
        .join('; ')
    : 'alerts config not in this build';

  const perf = (text: string, met: boolean | null) => ({ text: quick ? `${text} (judged in full runs)` : text, met: quick ? null : met });
  const ms = (s: Summary | undefined, k: 'p50' | 'p99') => s?.[k] ?? null;
  /** Why a percentile is n/a: the samples that never happened (undelivered messages, failed connects). */
  const missing = (s: Summary | undefined, what: string) =>
    s?.missing ? `${s.missing.toLocaleString('en-US')} of ${(s.count + s.missing).toLocaleString('en-US')} ${what}; ` : '';

  return [
    {
      key: 'attack.offered',
      label: 'bogus upgrade attempts offered',
      value: offered,
      unit: '/s',
      note: `${attack.sent.toLocaleString('en-US')} in ${floodS} s${attack.notSent ? `, ${attack.notSent} not sent (500 in flight)` : ''}; send lag p99 ${attack.lagMs.p99?.toFixed(1)} ms`,
      target: { text: `≥ ${sizes.attackRate.toLocaleString('en-US')}/s offered and rejected for ${floodS} s`, met: rateMet },
    },
    {
      key: 'attack.rejected',
      label: 'bogus attempts rejected (401 + 429)',
      value: rejected,
      unit: '/s',
      note: `401: ${n401.toLocaleString('en-US')}, 429: ${n429.toLocaleString('en-US')}`,
    },
    { key: 'attack.401', label: '  rejected 401 (looked up)', value: n401 / floodS, unit: '/s' },
    { key: 'attack.429', label: '  rejected 429 (failure budget, no lookup)', value: n429 / floodS, unit: '/s' },
    {
      key: 'attack.unanswered',
      label: '  other answers, timeouts (> 5 s), socket errors',
      value: nOther + attack.timeouts + nErrors,
      unit: '',
      note: [breakdown(Object.fromEntries(otherAnswers)), attack.timeouts ? `timeout: ${attack.timeouts}` : '', breakdown(attack.errors)]
        .filter(Boolean)
        .join(', '),
    },
    {
      key: 'attack.answer_p99',
      label: 'bogus attempt answer time p99',
      value: attack.answerMs.p99,
      unit: 'ms',
      note: `p50 ${attack.answerMs.p50?.toFixed(2)} ms`,
    },
    {
      key: 'legit.connects',
      label: 'legitimate connects (reconnects with since)',
      value: legit.connects.ok,
      unit: '',
      note: `${legit.connects.attempts} attempts, ${legit.connects.reconnects} reconnects${legit.connects.reconnectsSkipped ? `, ${legit.connects.reconnectsSkipped} ticks skipped (consumer still reconnecting)` : ''}`,
    },
    {
      key: 'legit.connect_failures',
      label: 'failed legitimate connects',
      value: failures,
      unit: '',
      ...(failures ? { note: `${breakdown(legit.connects.failures)}; by phase: ${byPhase}` } : {}),
      target: { text: '0', met: failures === 0 },
    },
    {
      key: 'legit.connect_p99',
      label: 'legitimate connect time p99 during flood',
      value: ms(legit.connects.timeMs.flood, 'p99'),
      unit: 'ms',
      note: missing(legit.connects.timeMs.flood, 'connects failed (counted as infinitely slow)').replace(/; $/, '') || undefined,
      baseline: { label: 'before the flood', value: ms(legit.connects.timeMs.baseline, 'p99') },
    },
    {
      key: 'legit.unexpected_closes',
      label: 'legitimate connections dropped by the server',
      value: Object.values(legit.connects.unexpectedCloses).reduce((n, c) => n + c, 0),
      unit: '',
      note: breakdown(legit.connects.unexpectedCloses) || undefined,
    },
    {
      key: 'messages.accepted',
      label: 'messages published (202)',
      value: legit.publish.accepted,
      unit: '',
      note:
        `${legit.publish.scheduled} scheduled at ${sizes.publishRate}/s` +
        (legit.publish.notSent ? `, ${legit.publish.notSent} not sent (200 in flight)` : '') +
        (Object.keys(legit.publish.failed).length ? `, failed: ${breakdown(legit.publish.failed)}` : '') +
        `; 202 p99 baseline ${ms(legit.publish.ackMs.baseline, 'p99')?.toFixed(1)} ms, flood ${ms(legit.publish.ackMs.flood, 'p99')?.toFixed(1)} ms`,
    },
    {
      key: 'messages.lost',
      label: 'lost messages (gaps + not delivered by the end of the drain)',
      value: legit.messages.lost,
      unit: '',
      note:
        `${legit.messages.delivered.toLocaleString('en-US')} delivered; gaps ${legit.messages.gaps}, not received by the end ${legit.messages.tail}` +
        `${legit.messages.unrecovered ? `, ${legit.messages.unrecovered} resubscribes not recovered` : ''}; ` +
        (legit.messages.caughtUp
          ? `all caught up ${legit.messages.drainMs} ms after the run`
          : `NOT caught up within ${legit.messages.drainMs} ms`),
      target: { text: '0', met: legit.messages.lost === 0 && legit.messages.caughtUp },
    },
    {
      key: 'messages.duplicated',
      label: 'duplicated messages',
      value: legit.messages.duplicated,
      unit: '',
      target: { text: '0', met: legit.messages.duplicated === 0 },
    },
    {
      key: 'delivery.p50.baseline',
      label: 'delivery p50 before the flood',
      value: ms(base, 'p50'),
      unit: 'ms',
      note: `${missing(base, 'deliveries never arrived')}${base?.count ?? 0} deliveries`,
    },
    {
      key: 'delivery.p50.flood',
      label: 'delivery p50 during the flood',
      value: ms(flood, 'p50'),
      unit: 'ms',
      baseline: { label: 'p50 before', value: ms(base, 'p50') },
    },
    { key: 'delivery.p99.baseline', label: 'delivery p99 before the flood', value: ms(base, 'p99'), unit: 'ms' },
    {
      key: 'delivery.p99.flood',
      label: 'delivery p99 during the flood',
      value: ms(flood, 'p99'),
      unit: 'ms',
      note:
        `${missing(flood, 'deliveries never arrived (counted as infinitely late)')}${flood?.count ?? 0} deliveries` +
        `${flood?.max != null ? `; max ${flood.max.toFixed(1)} ms` : ''}; live deliveries only (no replays): p99 ${ms(legit.liveDeliveryMs.flood, 'p99')?.toFixed(2)} ms`,
      baseline: { label: 'p99 before', value: ms(base, 'p99') },
      target: perf(`≤ ${MAX_P99_RATIO}× p99 before`, p99Ratio !== null && p99Ratio <= MAX_P99_RATIO),
    },
    {
      key: 'delivery.p99.settle',
      label: 'delivery p99 after the flood (settle)',
      value: ms(d.settle, 'p99'),
      unit: 'ms',
      note: missing(d.settle, 'deliveries never arrived').replace(/; $/, '') || undefined,
      baseline: { label: 'p99 before', value: ms(base, 'p99') },
    },
    { key: 'server.rss.before', label: 'server RSS at flood start', value: rssBefore, unit: 'MiB' },
    {
      key: 'server.rss.after',
      label: 'server RSS after settle',
      value: rssAfter,
      unit: 'MiB',
      baseline: { label: 'at flood start', value: rssBefore },
    },
    {
      key: 'server.rss.growth',
      label: 'server RSS growth (peak − flood start)',
      value: growth,
      unit: 'MiB',
      note: `peak ${rssPeak?.toFixed(1)} MiB`,
      target: { text: `< ${MAX_RSS_GROWTH_MIB} MiB`, met: growth !== null && growth < MAX_RSS_GROWTH_MIB },
    },
    {
      key: 'server.cpu.flood',
      label: 'server CPU during the flood',
      value: cpuPct('server', b.floodStart, b.floodEnd),
      unit: '%',
      baseline: { label: 'before', value: cpuPct('server', b.baseStart, b.floodStart) },
    },
    {
      key: 'loadgen.cpu.flood',
      label: 'load generators CPU during the flood (CPU 1)',
      value: (cpuPct('legit', b.floodStart, b.floodEnd) ?? 0) + (cpuPct('attack', b.floodStart, b.floodEnd) ?? 0),
      unit: '%',
      note: `legitimate side ${cpuPct('legit', b.floodStart, b.floodEnd)}%, attacker ${cpuPct('attack', b.floodStart, b.floodEnd)}%`,
    },
    {
      key: 'machine.other.flood',
      label: 'other processes on the machine during the flood',
      value: otherPct(),
      unit: '%',
      note: `CPU not used by the bench or the server, 100% = one core; during the baseline ${otherLoad(ticks, b.baseStart, b.floodStart)}%`,
    },
    {
      key: 'mail.invalid_token',
      label: 'invalid_token alert e-mails while running',
      value: x.withMail ? invalid.length : null,
      unit: '',
      note: mailNote,
      target: { text: '≤ 1 per group window', met: x.withMail ? invalid.length <= windows : null },
    },
    {
      key: 'mail.other',
      label: 'other alert e-mails while running',
      value: x.withMail ? x.mailsRunning.length - invalid.length : null,
      unit: '',
      note: x.withMail ? breakdown(otherKinds) || undefined : 'alerts config not in this build',
    },
  ].map((f) => (f.note === undefined ? (({ note: _n, ...rest }) => rest)(f) : f)) as Figure[];
}
