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

/** Each entry makes a fresh source for a test (`uid` keeps tests apart). */
export const sources: ((uid: string) => Source)[] = [amqpSource, mqttSource];
