import { hashSecret } from '../auth/secrets.ts';
import { TokenService } from '../auth/tokens.ts';
import type { Config } from '../config/schema.ts';
import { systemClock } from '../core/clock.ts';
import { randomId, randomSecret } from '../core/ids.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';
import { withStore } from './with-store.ts';

export const DEMO_USAGE = `hubcast demo [--url URL] [--tabs N] [--json]
  Makes the demo client (name "demo", may subscribe and publish on demo.>; reused when it exists) and
  N tokens (default 2, one per browser tab: a token holds one connection at a time), and prints the
  demo page's URLs, http://HOST:PORT/demo#token=… (the token stays in the fragment, never sent in a
  request). The page shows demo.feed live and a chat on demo.chat. The server must run with
  demo.enabled (--demo-enabled true). --url: the server's address as the browser reaches it
  (default from host, port and tls).`;

const NAME = 'demo';
const NAMESPACE = 'demo.>';
const FEED = 'demo.feed';
const CHAT = 'demo.chat';

/** The server's address as a browser on this machine reaches it: a wildcard host becomes localhost. */
function defaultBase(config: Config): string {
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${config.tls.cert ? 'https' : 'http'}://${host}:${config.port}`;
}

function baseUrl(given: string | undefined, config: Config): URL {
  let url: URL;
  try {
    url = new URL(given ?? defaultBase(config));
  } catch {
    throw new UsageError(`--url "${given}" is not a URL; e.g. http://localhost:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be an http:// or https:// URL');
  return url;
}

export async function demoCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { url: { type: 'string' }, tabs: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    io.out(DEMO_USAGE + '\n');
    return 0;
  }
  const config = configFrom(values);
  const tabs = Number(values.tabs ?? 2);
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > 20) throw new UsageError('--tabs is a number of tokens from 1 to 20');
  const base = baseUrl(values.url as string | undefined, config);

  const { clientId, tokens } = await withStore(config, async (store) => {
    // Reuse the demo client rather than pile up a new one per run; its secret is never needed (the
    // tokens are issued here), so a fresh client's secret is thrown away.
    const existing = (await store.listClients()).find(
      (c) => c.name === NAME && c.revokedAt === null && c.subscribe.includes(NAMESPACE) && c.publish.includes(NAMESPACE),
    );
    let id = existing?.id;
    if (!id) {
      id = randomId('c_');
      const secretHash = await hashSecret(randomSecret());
      await store.createClient({
        id,
        name: NAME,
        secretHash,
        subscribe: [NAMESPACE],
        publish: [NAMESPACE],
        presence: [],
        createdAt: Date.now(),
        revokedAt: null,
      });
    }
    const service = new TokenService({
      store,
      clock: systemClock,
      idleTtlS: config.tokens.idleTtl,
      ticketTtlS: config.tickets.ttlS,
      maxPerClient: config.tokens.maxPerClient,
      isLive: async () => false,
    });
    const issued: string[] = [];
    for (let i = 0; i < tabs; i++) {
      const { token } = await service.issue(id);
      if (token === undefined) throw new UsageError(`the demo client ${id} holds tokens.maxPerClient tokens, each with a live connection`);
      issued.push(token);
    }
    return { clientId: id, tokens: issued };
  });

  const page = new URL('/demo', base);
  const urls = tokens.map((token) => `${page.href}#token=${token}&topic=${FEED}&chat=${CHAT}`);
  if (values.json === true) {
    io.out(JSON.stringify({ client_id: clientId, topic: FEED, chat: CHAT, urls }) + '\n');
  } else {
    io.out(
      `Demo client ${clientId} (subscribe and publish on ${NAMESPACE}). Open each URL in its own tab:\n\n` +
        urls.map((u) => `  ${u}\n`).join('') +
        `\nThen publish to the feed, with an ingest key ($KEY, from \`hubcast keys create --name NAME\`):\n` +
        `  hubcast pub ${FEED} '{"hello":"world"}' --key "$KEY"${values.url === undefined ? '' : ` --url ${base.origin}`}\n` +
        `  curl -X POST ${new URL(`/entity/${FEED}`, base).href} -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"hello":"world"}'\n`,
    );
  }
  if (!config.demo.enabled)
    io.err('note: this config has demo.enabled false; the server must run with --demo-enabled true (or HUBCAST_DEMO_ENABLED=true)\n');
  const origins = config.ws.allowedOrigins;
  if (origins.length > 0 && !origins.includes('*') && !origins.includes(page.origin))
    io.err(`note: ws.allowedOrigins does not list ${page.origin}: the page would be refused (403, close 4513); add it\n`);
  return 0;
}
