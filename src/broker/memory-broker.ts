import type { Broker, Publication } from './broker.ts';

/** In-process broker: hands each publication straight to this node's gateway. */
export class MemoryBroker implements Broker {
  #deliver: ((pub: Publication) => void) | undefined;

  async start(onPublication: (pub: Publication) => void): Promise<void> {
    this.#deliver = onPublication;
  }

  publish(pub: Publication): void {
    this.#deliver?.(pub);
  }

  async close(): Promise<void> {
    this.#deliver = undefined;
  }
}
