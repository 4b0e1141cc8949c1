/**
 * The child side of a bench worker (a load generator started by `Children.start({ ipc: true })`).
 * A worker never outlives the bench: it exits when the IPC channel closes (the parent died) or when
 * its hard lifetime ends, and SIGTERM ends it at once.
 */

type Message = { type: string; [k: string]: unknown };

/** Sends a message to the parent; resolves once it is handed to the channel. */
export function send(msg: Message): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** Runs `main(config)` on the parent's `{type:'config'}` message; reports its errors as `{type:'error'}`. */
export function runWorker<C>(main: (config: C, next: (type: string) => Promise<Message>) => Promise<void>, lifetimeMs: number): void {
  if (!process.send) {
    process.stderr.write('a bench worker: started by the bench runner only\n');
    process.exit(2);
  }
  const hard = setTimeout(() => {
    process.stderr.write(`worker: hard lifetime of ${lifetimeMs} ms reached; exiting\n`);
    process.exit(3);
  }, lifetimeMs);
  hard.unref();
  let finished = false;
  process.on('disconnect', () => process.exit(finished ? 0 : 4));
  process.on('SIGTERM', () => process.exit(0));

  const inbox: Message[] = [];
  const waiters: (() => void)[] = [];
  process.on('message', (m: Message) => {
    inbox.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = (type: string): Promise<Message> =>
    new Promise((resolve) => {
      const check = () => {
        const i = inbox.findIndex((m) => m.type === type);
        if (i === -1) return void waiters.push(check);
        resolve(inbox.splice(i, 1)[0]!);
      };
      check();
    });

  next('config')
    .then((m) => main(m.config as C, next))
    .then(
      () => {
        finished = true;
        process.exit(0);
      },
      async (err: unknown) => {
        await send({ type: 'error', message: (err as Error)?.stack ?? String(err) });
        process.exit(1);
      },
    );
}
