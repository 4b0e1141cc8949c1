import type { BrokerHandler, ControlEnvelope, Publication } from '../broker/broker.ts';
import type { Logger } from '../logger.ts';
import type { Positions } from './positions.ts';

export interface ClusterLinkDeps {
  positions: Positions;
  /** Handles a control message on this node (the gateway). */
  onControl: (env: ControlEnvelope) => void;
  log: Logger;
  /** The broker went down or came back (metrics, alerts, /healthz). */
  onState?: (state: 'up' | 'down', err?: unknown) => void;
}

/**
 * What the broker hands to this node, in one place: publications and position notices go through
 * `Positions` (in order, once, gaps filled from History) to the hub; control messages to the
 * gateway; after a broker outage every delivered topic is compared with History (resync).
 */
export class ClusterLink implements BrokerHandler {
  readonly #d: ClusterLinkDeps;
  #down = false;

  constructor(deps: ClusterLinkDeps) {
    this.#d = deps;
  }

  publication(pub: Publication): void {
    this.#d.positions.accept(pub);
  }

  position(topic: string, offset: number, epoch: string): void {
    this.#d.positions.position(topic, offset, epoch);
  }

  control(env: ControlEnvelope): void {
    try {
      this.#d.onControl(env);
    } catch (err) {
      this.#d.log.error({ err, op: env.msg?.op, from: env.from }, 'control message failed');
    }
  }

  state(state: 'up' | 'down', err?: unknown): void {
    if (state === 'down') {
      if (this.#down) return;
      this.#down = true;
      this.#d.log.error({ err }, 'broker connection lost: publications keep being stored; other nodes catch up when it is back');
    } else {
      if (!this.#down) return;
      this.#down = false;
      this.#d.log.info('broker connection back: re-reading every delivered topic from history');
      this.#d.positions.resync();
    }
    this.#d.onState?.(state, err);
  }
}
