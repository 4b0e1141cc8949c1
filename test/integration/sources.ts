/**
 * Test adapters for the shared connector suite (flow.test.ts): how to produce record `i` at each real
 * backend, and the connector settings that read it (through `port`, the real one or a TcpProxy's).
 * Every record is the JSON object `{ i, region: "eu" }` with a stable source id.
 */
export interface Source {
  type: string;
  service: string;
  /** The real service's port. */
  port: number;
  /** The source cannot be put behind a TCP proxy (files). */
  noProxy?: boolean;
  setup(): Promise<void>;
  settings(port: number): Record<string, unknown>;
  produce(i: number): Promise<void>;
  cleanup(): Promise<void>;
}

const record = (i: number) => ({ i, region: 'eu', id: `r${i}` });

function amqpSource(uid: string): Source {
  const queue = `hubcast-flow-${uid}`;
  let conn: import('amqplib').ChannelModel | undefined;
  let ch: import('amqplib').ConfirmChannel | undefined;
  return {
    type: 'amqp',
    service: 'RabbitMQ',
    port: 5672,
    async setup() {
      const amqp = await import('amqplib');
      conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
      ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
    },
    settings: (port) => ({ url: `amqp://guest:guest@127.0.0.1:${port}`, queue }),
    async produce(i) {
      ch!.sendToQueue(queue, Buffer.from(JSON.stringify(record(i))), {
        messageId: `m${i}`,
        contentType: 'application/json',
        persistent: true,
      });
      await ch!.waitForConfirms();
    },
    async cleanup() {
      await ch?.deleteQueue(queue).catch(() => {});
      await conn?.close().catch(() => {});
    },
  };
}

function mqttSource(uid: string): Source {
  const base = `hubcast-flow/${uid}`;
  let client: import('mqtt').MqttClient | undefined;
  return {
    type: 'mqtt',
    service: 'Mosquitto',
    port: 1883,
    async setup() {
      const mqtt = await import('mqtt');
      client = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: `hubcast-flow-producer-${uid}`, reconnectPeriod: 0 });
    },
    settings: (port) => ({ url: `mqtt://127.0.0.1:${port}`, topics: [`${base}/#`], clientId: `hubcast-flow-${uid}` }),
    async produce(i) {
      await client!.publishAsync(`${base}/eu`, JSON.stringify(record(i)), { qos: 1 });
    },
    async cleanup() {
      await client?.endAsync().catch(() => {});
    },
  };
}

function postgresSource(uid: string): Source {
  const table = `hubcast_flow_${uid}`;
  let client: import('pg').Client | undefined;
  return {
    type: 'postgres',
    service: 'PostgreSQL',
    port: 5432,
    async setup() {
      const pg = await import('pg');
      client = new pg.default.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
      await client.connect();
      await client.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, body jsonb NOT NULL)`);
    },
    settings: (port) => ({
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      query: `SELECT id, (body->>'i')::int AS i, body->>'region' AS region FROM ${table} WHERE id > $1 ORDER BY id LIMIT 50`,
      cursorColumn: 'id',
      pollMs: 100,
    }),
    async produce(i) {
      await client!.query(`INSERT INTO ${table} (body) VALUES ($1)`, [JSON.stringify(record(i))]);
    },
    async cleanup() {
      await client?.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await client?.end().catch(() => {});
    },
  };
}

function fileSource(uid: string): Source {
  let dir = '';
  return {
    type: 'file',
    service: 'the file system',
    port: 0,
    noProxy: true,
    async setup() {
      const { mkdtempSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      dir = mkdtempSync(join(tmpdir(), `hubcast-flow-${uid}-`));
    },
    settings: () => ({ path: dir, glob: '*.json', pollMs: 50 }),
    async produce(i) {
      const { writeFileSync, renameSync } = await import('node:fs');
      const { join } = await import('node:path');
      const name = `r${String(i).padStart(5, '0')}.json`;
      writeFileSync(join(dir, `.${name}.tmp`), JSON.stringify(record(i)));
      renameSync(join(dir, `.${name}.tmp`), join(dir, name));
    },
    async cleanup() {
      const { rmSync } = await import('node:fs');
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function natsSource(uid: string): Source {
  const stream = `HUBCAST_FLOW_${uid}`;
  const subject = `hubcast.flow.${uid}`;
  let nc: import('nats').NatsConnection | undefined;
  return {
    type: 'nats',
    service: 'NATS',
    port: 4222,
    async setup() {
      const nats = await import('nats');
      nc = await nats.connect({ servers: 'nats://127.0.0.1:4222' });
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: stream, subjects: [subject] });
    },
    settings: (port) => ({
      servers: `nats://127.0.0.1:${port}`,
      jetstream: { stream, durable: `flow_${uid}`, ackWaitS: 1, maxAckPending: 1 },
    }),
    async produce(i) {
      await nc!.jetstream().publish(subject, new TextEncoder().encode(JSON.stringify(record(i))));
    },
    async cleanup() {
      if (!nc) return;
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(stream).catch(() => {});
      await nc.close();
    },
  };
}

function httpPollSource(uid: string): Source {
  const items: ReturnType<typeof record>[] = [];
  let server: import('node:http').Server | undefined;
  let port = 0;
  return {
    type: 'http-poll',
    service: `a local HTTP API (${uid})`,
    get port() {
      return port;
    },
    async setup() {
      const http = await import('node:http');
      server = http.createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ items: items.slice(-500) }));
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
      port = (server.address() as { port: number }).port;
    },
    settings: (p) => ({ url: `http://127.0.0.1:${p}/orders`, intervalS: 0.1, itemsPath: 'items', keyField: 'id' }),
    async produce(i) {
      items.push(record(i));
    },
    async cleanup() {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    },
  };
}

/** Each entry makes a fresh source for a test (`uid` keeps tests apart). */
export const sources: ((uid: string) => Source)[] = [amqpSource, mqttSource, postgresSource, natsSource, httpPollSource, fileSource];
