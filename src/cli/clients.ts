import { isoTime, issueClient, MAX_NAME, normalizePatterns, PATTERN_RULE } from '../auth/issue.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';
import { withStore } from './with-store.ts';

export const CLIENTS_USAGE = `hubcast clients create --name NAME [--subscribe PATTERN]... [--publish PATTERN]... [--presence PATTERN]... [--json]
hubcast clients list [--json]
hubcast clients revoke CLIENT_ID [--json]
  A client's secret is shown once and stored only as an scrypt hash. Patterns: orders.eu, orders.*, orders.>.
  A client may subscribe only to what its --subscribe patterns cover (none given: nothing);
  --presence: topics whose subscribers it may list and whose join/leave events it may receive.
  Revoking closes its live connections with 4500 and invalidates its tokens.`;

const own = {
  name: { type: 'string' as const },
  subscribe: { type: 'string' as const, multiple: true },
  publish: { type: 'string' as const, multiple: true },
  presence: { type: 'string' as const, multiple: true },
  json: { type: 'boolean' as const },
};

function patterns(list: string[] | undefined, flag: string): string[] {
  const r = normalizePatterns((list ?? []).flatMap((p) => p.split(',')));
  if (!r.ok) throw new UsageError(`--${flag} "${r.bad}" is not a valid topic pattern (${PATTERN_RULE})`);
  return r.patterns;
}

export async function clientsCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, own);
  if (values.help || !sub) {
    io.out(CLIENTS_USAGE + '\n');
    return sub ? 0 : 2;
  }
  const config = configFrom(values);
  const json = values.json === true;
  switch (sub) {
    case 'create': {
      const name = values.name as string | undefined;
      if (!name || name.length > MAX_NAME) throw new UsageError(`clients create needs --name NAME (1–${MAX_NAME} characters)`);
      const subscribe = patterns(values.subscribe as string[] | undefined, 'subscribe');
      const publish = patterns(values.publish as string[] | undefined, 'publish');
      const presence = patterns(values.presence as string[] | undefined, 'presence');
      const { client, secret } = await withStore(config, (store) => issueClient(store, { name, subscribe, publish, presence }, Date.now()));
      const { id, createdAt } = client;
      if (json) {
        io.out(
          JSON.stringify({
            client_id: id,
            client_secret: secret,
            name,
            subscribe,
            publish,
            presence,
            created_at: new Date(createdAt).toISOString(),
          }) + '\n',
        );
      } else {
        io.out(
          `client_id:     ${id}\nclient_secret: ${secret}\n  (shown once: keep it now; only its hash is stored)\n` +
            `name:          ${name}\nsubscribe:     ${subscribe.join(' ') || '(none: this client may subscribe to nothing)'}\n` +
            `publish:       ${publish.join(' ') || '(none: receive-only)'}\n` +
            (presence.length ? `presence:      ${presence.join(' ')}\n` : ''),
        );
      }
      return 0;
    }
    case 'list': {
      const clients = await withStore(config, (store) => store.listClients());
      const rows = clients.map((c) => ({
        client_id: c.id,
        name: c.name,
        subscribe: c.subscribe,
        publish: c.publish,
        presence: c.presence ?? [],
        created_at: new Date(c.createdAt).toISOString(),
        revoked_at: isoTime(c.revokedAt),
      }));
      if (json) io.out(JSON.stringify({ clients: rows }) + '\n');
      else if (rows.length === 0) io.out('no clients\n');
      else
        for (const r of rows)
          io.out(
            `${r.client_id}  ${r.name}  subscribe=${r.subscribe.join(',') || '-'}  publish=${r.publish.join(',') || '-'}${r.revoked_at ? '  REVOKED ' + r.revoked_at : ''}\n`,
          );
      return 0;
    }
    case 'revoke': {
      const id = positionals[0];
      if (!id) throw new UsageError('clients revoke needs CLIENT_ID');
      const ok = await withStore(config, (store) => store.revokeClient(id, Date.now()));
      if (json) io.out(JSON.stringify({ client_id: id, revoked: ok }) + '\n');
      else io.err(ok ? `revoked ${id}\n` : `no active client ${id}\n`);
      return ok ? 0 : 1;
    }
    default:
      throw new UsageError(CLIENTS_USAGE);
  }
}
