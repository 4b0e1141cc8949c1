import type { HistogramData } from './histogram.ts';

/**
 * What the cluster scenario's orchestrator and its hold workers (bench/lib/cluster-hold.ts) tell
 * each other. After `{type:'config'}` the worker answers `{type:'ready'}`, then runs commands
 * `{type:'cmd', cmd}` one at a time, each answered by a message named after the command.
 *
 * Every published payload carries the marker of bench/contenders/payload.ts: a sequence number
 * (one counter per cluster run, across topics) and the publisher's CLOCK_MONOTONIC stamp. Windows
 * are ranges of sequence numbers; order is checked on offsets (a connection must receive the
 * topic's offset in `subscribed` + 1, + 2, … each once: a lower one is a duplicate, a higher one a
 * gap), since concurrent requests of the publisher may commit in another order than their numbers.
 */

export interface ClusterHoldConfig {
  /** Node i listens on 127.0.0.1:ports[i]. */
  ports: number[];
  /**
   * Bind to these source addresses, round robin; empty: let connect() choose (see the scenario for
   * why that is the default).
   */
  sources: string[];
  /** Connections being set up at once. */
  connectConcurrency: number;
  /** One connection's connect + authenticate + subscribe must finish within this. */
  connectTimeoutMs: number;
  /** Bound on one `open` command. */
  setupTimeoutMs: number;
}

export type ClusterHoldCommand =
  /** Open `tokens[k]` on node `nodes[k]`, each subscribed to `topic`. Answer: `opened`. */
  | { cmd: 'open'; topic: string; tokens: string[]; nodes: number[] }
  /** Record latency and arrival for messages `from` ≤ seq < `to` (replaces the previous window). Answer: `tracking`. */
  | { cmd: 'track'; from: number; to: number }
  /** How many held connections have received every message of the window, fresh and in order. Answer: `progress`. */
  | { cmd: 'progress' }
  /** The window's figures and the connections' state. Answer: `report`. */
  | { cmd: 'report' }
  /** Close every held connection. Answer: `closed`. */
  | { cmd: 'close' }
  /** End the worker. */
  | { cmd: 'exit' };

export interface Opened {
  attempted: number;
  held: number;
  /** Held per node index. */
  perNode: number[];
  /** Failed set-ups by reason (`http_409`, `ECONNRESET`, `timeout`). */
  failures: Record<string, number>;
  ms: number;
}

export interface Progress {
  /** Connections held now, per node index. */
  held: number[];
  /** Held connections that received every message of the window, fresh and in order, per node index. */
  done: number[];
}

/** One node's side of a window, as seen by this worker's connections on it. */
export interface NodeWindow {
  /** Latency (receipt − publisher's stamp) of every delivery in the window. */
  latency: HistogramData;
  /** Deliveries per sequence (index = seq − from). */
  count: number[];
  /** Monotonic time (ms) of the last delivery of each sequence, 0 when none came. */
  lastAt: number[];
}

export interface NodeConns {
  /** Connections held now. */
  held: number;
  /** Held connections that received every message of the window, fresh and in order. */
  complete: number;
  /** Sequences skipped, summed over connections (a later one arrived first or instead). */
  gaps: number;
  /** Sequences received again (or after a later one). */
  duplicates: number;
}

export interface Report {
  from: number;
  to: number;
  nodes: NodeWindow[];
  conns: NodeConns[];
  /** Closes the worker did not ask for, by close code. */
  closedByServer: Record<string, number>;
  /** Frames without the payload marker. */
  stray: number;
}
