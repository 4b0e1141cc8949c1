/**
 * BENCH ONLY: the ingest scenario's bare endpoint — Fastify 5 (the framework Hubcast's HTTP side
 * runs on), `POST /entity` answering 202 with a JSON body of the same shape as Hubcast's
 * (`{"topic","offset","id"}`), no storage, no key check, logger off.
 *
 *   node --import tsx bench/scenarios/ingest/bare-http.ts --port N
 *
 * SIGTERM/SIGINT: exit.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const app = Fastify({ logger: false, bodyLimit: 262_144 + 16 * 1024 });
let offset = 0;
app.post('/entity', async (req, reply) => {
  const body = req.body as { topic?: unknown; data?: unknown };
  if (typeof body !== 'object' || body === null || typeof body.topic !== 'string' || body.data === undefined)
    return reply.code(400).send({ error: { code: 'bad_request' } });
  return reply.code(202).send({ topic: body.topic, offset: ++offset, id: randomBytes(12).toString('base64url') });
});
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: values.host, port: Number(values.port ?? 0) });

const stop = () => void app.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
