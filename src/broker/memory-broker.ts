import type { Broker, BrokerHandler, ControlMessage, Publication } from './broker.ts';

/**
 * In-process broker (one node): hands each publication straight to this node's gateway. Interest is
 * not tracked (the hub filters by its own index at no cost); control messages loop back to this node.
 */
export class MemoryBroker implements Broker {
  #h: BrokerHandler | undefined;
  #nodeId = '';
  readonly dropped = 0;

  get connected(): boolean {
    return this.#h !== undefined;
  }

  async start(nodeId: string, handler: BrokerHandler): Promise<void> {
    this.#nodeId = nodeId;
    this.#h = handler;
  }

  publish(pub: Publication): void {
    this.#h?.publication(pub);
  }

  interest(): void {}

  disinterest(): void {}

  control(msg: ControlMessage, to?: string): void {
    const h = this.#h;
    if (!h || (to !== undefined && to !== this.#nodeId)) return;
    const from = this.#nodeId;
    queueMicrotask(() => h.control({ from, msg }));
  }

  async close(): Promise<void> {
    this.#h = undefined;
  }
}
