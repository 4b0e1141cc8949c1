import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotFunctions } from '../lib/cpu-profile.ts';
import { freePort, waitForHttp } from '../lib/procs.ts';
import { hubcast } from './hubcast.ts';
import { mosquittoTcp, mosquittoWs } from './mosquitto-ws.ts';
import { natsWs } from './nats-ws.ts';
import type { Contender, StartOptions, Started, Target } from './types.ts';

export type { Contender, Started, Target } from './types.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A Node contender of this folder (`ws-frame-once.ts`, `socketio.ts`): `--port N`, GET /healthz. */
function nodeScript(file: string, kind: 'ws-frame-once' | 'socketio') {
  const script = fileURLToPath(new URL(file, import.meta.url));
  return async ({ children, dir, profile }: StartOptions): Promise<Started> => {
    const port = await freePort();
    const profDir = join(dir, 'cpu-prof');
    const child = children.start({
      name: kind,
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
export const CONTENDERS: readonly Contender[] = [hubcast, wsFrameOnce, socketio, natsWs, mosquittoWs, mosquittoTcp];

/** Run by default; the others only when named in `--contenders=`. */
const DEFAULT = ['hubcast', 'ws-frame-once', 'socketio', 'nats-ws', 'mosquitto-ws'];

export interface Picked {
  contenders: Contender[];
  /** Contenders asked for (or run by default) that cannot run here, with the reason. */
  skipped: { contender: Contender; why: string }[];
}

/** `--contenders=a,b` (Hubcast is always first, added when left out), else the default set; drops those unavailable here. */
export async function pickContenders(flags: ReadonlySet<string>): Promise<Picked> {
  const flag = [...flags].find((f) => f.startsWith('--contenders='));
  const names = flag ? flag.slice('--contenders='.length).split(',').filter(Boolean) : DEFAULT;
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
