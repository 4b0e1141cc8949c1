import type { Target } from '../../contenders/types.ts';

/**
 * What the memory scenario's orchestrator and its hold workers tell each other. After
 * `{type:'config'}` the worker answers `{type:'ready'}`, then runs commands `{type:'cmd', cmd}` one at
 * a time, each answered by a message of the same name as the command.
 */

export interface HoldConfig {
  target: Target;
  /** The logical topic every connection subscribes to (`bench.mem`; the adapter spells it). */
  topic: string;
  /** Connections being set up at once. */
  connectConcurrency: number;
  /** One connection's connect + subscribe must finish within this. */
  connectTimeoutMs: number;
  /** Bound on one `open` command. */
  setupTimeoutMs: number;
  /**
   * Hubcast only: connect from these source addresses (round robin) through bench/lib/hubcast-consumer.ts
   * instead of the comparison adapter (one address has ~28k ephemeral ports).
   */
  sources?: string[];
}

export type HoldCommand =
  /** Open and subscribe connections `from` ≤ i < `to` (Hubcast: token i). Answer: `opened`. */
  | { cmd: 'open'; from: number; to: number }
  /** Answer: `status`. */
  | { cmd: 'status' }
  /** Close every held connection. Answer: `closed`. */
  | { cmd: 'close' }
  /** End the worker. */
  | { cmd: 'exit' };

export interface Opened {
  attempted: number;
  held: number;
  /** Failed set-ups by reason (`http_503`, `ECONNRESET`, `timeout`). */
  failures: Record<string, number>;
  ms: number;
}

export interface HoldStatus {
  /** Connections set up and not closed since. */
  alive: number;
  /** Closes the worker did not ask for, by close code. */
  closedByServer: Record<string, number>;
  /** Messages received (none are published in this scenario). */
  deliveries: number;
}
