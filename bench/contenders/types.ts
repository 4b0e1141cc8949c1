import type { HotSummary, ProfileWindow } from '../lib/cpu-profile.ts';
import type { Children } from '../lib/procs.ts';

/**
 * The servers the comparison scenarios (fanout, latency, topics) run side by side. A contender is
 * started fresh for each measurement, pinned to CPU 0, on a free loopback port; the load generator
 * (bench/contenders/load.ts, CPU 1) reaches it through a `Target` with the protocol adapter of its
 * `kind` (bench/contenders/protocol.ts), always over the one lean WebSocket client.
 */

/** How the load generator reaches a started contender (sent over IPC: plain data). */
export type Target =
  | {
      kind: 'hubcast';
      port: number;
      /** One consumer token per subscriber (index = subscriber). */
      tokens: string[];
      /** Client credentials: the first `register` subscribers get their token from POST /consumers instead. */
      clientId: string;
      clientSecret: string;
      register: number;
      ingestKey: string;
    }
  | { kind: 'ws-frame-once'; port: number }
  | { kind: 'socketio'; port: number }
  | { kind: 'nats'; port: number }
  | { kind: 'mqtt'; port: number; transport: 'ws' | 'tcp' };

export interface StartOptions {
  children: Children;
  /** A fresh folder for this run (config, data dir, logs, profiles). */
  dir: string;
  /** Subscribers the run will connect (Hubcast: tokens to issue). */
  subscribers: number;
  /** `--cpu-prof`: Node contenders write a CPU profile into `dir/cpu-prof`. */
  profile: boolean;
  log: (msg: string) => void;
}

export interface Started {
  /** The server process (its /proc/<pid>/stat is the server CPU). */
  pid: number;
  target: Target;
  /** Is the process still running? */
  running(): boolean;
  /** Stops the server (SIGTERM, bounded, then SIGKILL); idempotent. */
  stop(): Promise<void>;
  /** After stop(), with `profile`: the busiest functions of the server's main thread (within `window` if given). */
  profile?(window?: ProfileWindow): HotSummary | undefined;
  /** Setup facts for the notes (`5,000 tokens seeded in 120 ms`). */
  notes: string[];
}

export interface Contender {
  /** `hubcast`, `ws-frame-once`, `ws-coalesce`, `socketio`, `nats-ws`, `mosquitto-ws`. */
  name: string;
  label: string;
  description: string;
  /** null when it can run here, else why not (binary missing, no websocket support). */
  unavailable(): Promise<string | null>;
  start(opts: StartOptions): Promise<Started>;
}
