import { writeSync } from 'node:fs';
import { Hubcast } from '../../../packages/client/src/index.ts';
import { fileStorage } from '../../../packages/client/src/node.ts';

/**
 * A consumer process for kill -9 tests: `node --import tsx consumer.ts URL CLIENT_ID SECRET FILE TOPIC`
 * prints `<offset>\n` for each message, synchronously (what is printed was handed to the application),
 * with its positions in FILE.
 */
const [url, clientId, clientSecret, file, topic] = process.argv.slice(2) as [string, string, string, string, string];
const hub = new Hubcast({ url, clientId, clientSecret, storage: fileStorage(file), backoff: { initialMs: 50, maxMs: 200 } });
const sub = hub.subscribe(topic);
sub.on('subscribed', () => writeSync(2, 'subscribed\n'));
sub.on('message', (m) => writeSync(1, `${m.offset}\n`));
