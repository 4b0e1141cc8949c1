/** A listener table: `on` returns a function that removes the listener. */
export class Emitter<E extends { [K in keyof E]: (...args: any[]) => void }> {
  #listeners: { [K in keyof E]?: Set<E[K]> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    (this.#listeners[event] ??= new Set()).add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.#listeners[event]?.delete(listener);
  }

  /**
   * Calls the listeners in order. A listener that throws does not stop the others nor the client: its
   * error is thrown again from a microtask (an uncaught exception, as with any event handler).
   * @internal
   */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    for (const l of [...(this.#listeners[event] ?? [])]) {
      try {
        l(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
