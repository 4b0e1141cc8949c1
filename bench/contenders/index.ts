import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { freePort, waitForHttp } from '../lib/procs.ts';
import { hubcast, hubcastWriteDelay } from './hubcast.ts';
import { mosquittoTcp, mosquittoWs } from './mosquitto-ws.ts';
import { natsWs } from './nats-ws.ts';
import type { Contender, StartOptions, Started, Target } from './types.ts';

export type { Contender, Started, Target } from './types.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A Node contender of this folder (`ws-frame-once.ts`, `ws-coalesce.ts`, `socketio.ts`): `--port N`, GET /healthz.
 * `kind` is its wire protocol (ws-coalesce speaks ws-frame-once's); `name` names the process.
 */
function nodeScript(file: string, kind: 'ws-frame-once' | 'socketio', name: string = kind) {
  const script = fileURLToPath(new URL(file, import.meta.url));
  return async ({ children, dir, profile }: StartOptions): Promise<Started> => {
    const port = await freePort();
    const profDir = join(dir, 'cpu-prof');
    const child = children.start({
      name,
      script,
      args: ['--port', String(port)],
      nodeArgs: profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
      cpu: 0,
      logFile: join(dir, 'server.log'),
    });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, child);
    const target: Target = kind === 'socketio' ? { kind, port } : { kind, port };
    return {
      pid: child.pid,
      target,
      running: () => child.running,
      stop: async () => void (await child.stop(5000)),
      profile: (window) => (profile ? hotFunctions(profDir, ROOT, 15, window) : undefined),
      notes: [],
    };
  };
}

export const wsFrameOnce: Contender = {
  name: 'ws-frame-once',
  label: 'ws frame-once',
  description:
    'bench/contenders/ws-frame-once.ts: a bare `ws` server, no auth, no history, a Set of sockets per topic; `POST /publish` frames the ' +
    'message once and writes the same bytes to every subscriber’s net.Socket — the practical ceiling for one write per recipient in Node.',
  unavailable: async () => null,
  start: nodeScript('./ws-frame-once.ts', 'ws-frame-once'),
};

export const wsCoalesce: Contender = {
  name: 'ws-coalesce',
  label: 'ws coalescing',
  description:
    'bench/contenders/ws-coalesce.ts: the frame-once `ws` server (no auth, no history, a Set of subscribers per topic, each message framed ' +
    'once) that also coalesces each socket’s frames per event-loop turn: frames queue per subscriber, one `setImmediate` per turn writes ' +
    'each subscriber’s frames with one socket write (one WebSocket frame per message still) — the practical ceiling when the backend ' +
    'publishes a few messages at a time (issue 12). Same protocol and `POST /publish` as ws frame-once.',
  unavailable: async () => null,
  start: nodeScript('./ws-coalesce.ts', 'ws-frame-once', 'ws-coalesce'),
};

export const socketio: Contender = {
  name: 'socketio',
  label: 'Socket.IO',
  description:
    'bench/contenders/socketio.ts: Socket.IO 4 (`socket.io` 4.8), websocket transport only, perMessageDeflate and HTTP compression off, ' +
    "default in-memory adapter; `POST /publish` calls `io.to(topic).emit('m', body)`; subscribers join rooms.",
  unavailable: async () => null,
  start: nodeScript('./socketio.ts', 'socketio'),
};

/** Every contender, Hubcast first (the tables give each ratio to it). */
export const CONTENDERS: readonly Contender[] = [
  hubcast,
  hubcastWriteDelay,
  wsFrameOnce,
  wsCoalesce,
  socketio,
  natsWs,
  mosquittoWs,
  mosquittoTcp,
];

/** Run by default (a scenario may pass its own list); the others only when named in `--contenders=`. */
export const DEFAULT_CONTENDERS: readonly string[] = ['hubcast', 'ws-frame-once', 'socketio', 'nats-ws', 'mosquitto-ws'];

export interface Picked {
  contenders: Contender[];
  /** Contenders asked for (or run by default) that cannot run here, with the reason. */
  skipped: { contender: Contender; why: string }[];
}

/** `--contenders=a,b` (Hubcast is always first, added when left out), else `defaults`; drops those unavailable here. */
export async function pickContenders(flags: ReadonlySet<string>, defaults: readonly string[] = DEFAULT_CONTENDERS): Promise<Picked> {
  const flag = [...flags].find((f) => f.startsWith('--contenders='));
  const names = flag ? flag.slice('--contenders='.length).split(',').filter(Boolean) : defaults;
  for (const n of names)
    if (!CONTENDERS.some((c) => c.name === n))
      throw new Error(`unknown contender "${n}"; known: ${CONTENDERS.map((c) => c.name).join(', ')}`);
  const wanted = CONTENDERS.filter((c) => c.name === 'hubcast' || names.includes(c.name));
  const picked: Picked = { contenders: [], skipped: [] };
  for (const c of wanted) {
    const why = await c.unavailable();
    if (why) picked.skipped.push({ contender: c, why });
    else picked.contenders.push(c);
  }
  return picked;
}
