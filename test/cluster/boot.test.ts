import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import { createServer, type HubcastServer } from '../../src/server.ts';
import { dropSchema, pgUrl, PG_PORT, uniqueSchema } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/server.ts';
import { requireService } from '../helpers/tcp-proxy.ts';

const pgUp = await requireService('PostgreSQL', PG_PORT);
const redisUp = await requireService('Redis', 6379);

/** Boot-time refusals of a cluster that cannot work: precise messages naming the keys. */
describe.skipIf(!pgUp || !redisUp)('cluster configuration errors at boot (real PostgreSQL and Redis)', () => {
  function node(schema: string, nodeId: string, broker: 'redis' | 'memory'): HubcastServer {
    const s = createServer(
      {
        host: '127.0.0.1',
        port: 0,
        nodeId,
        dataDir: tempDir(),
        store: { type: 'postgres', url: pgUrl(), schema },
        broker: { type: broker, prefix: schema },
        cluster: { leaseS: 3 },
      },
      { logger: pino({ level: 'silent' }) },
    );
    onTestFinished(() => s.close());
    return s;
  }

  it('a node on the memory broker while other nodes are live on the store is refused, naming broker.type', async () => {
    const schema = uniqueSchema();
    onTestFinished(() => dropSchema(schema));
    await node(schema, 'a', 'redis').listen();
    const b = node(schema, 'b', 'memory');
    const err = await b.listen().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/broker\.type is memory but other nodes are live on this store \(a\)/);
  });

  it('two live processes with one nodeId are refused, naming nodeId', async () => {
    const schema = uniqueSchema();
    onTestFinished(() => dropSchema(schema));
    await node(schema, 'same', 'redis').listen();
    const err = await node(schema, 'same', 'redis')
      .listen()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^nodeId: /);
  });
});
