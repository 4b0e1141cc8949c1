import { isoTime, issueKey, MAX_NAME } from '../auth/issue.ts';
import { configFrom, parse, UsageError, type Io } from './options.ts';
import { withStore } from './with-store.ts';

export const KEYS_USAGE = `hubcast keys create --name NAME [--scope ingest|admin] [--json]
hubcast keys list [--json]
hubcast keys revoke NAME_OR_ID [--json]
  Ingest keys authorize POST /entity (Authorization: Bearer <key>); admin keys also the admin routes
  (GET /connectors). A key is shown once and stored only as a hash.`;

export async function keysCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { name: { type: 'string' }, scope: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help || !sub) {
    io.out(KEYS_USAGE + '\n');
    return sub ? 0 : 2;
  }
  const config = configFrom(values);
  const json = values.json === true;
  switch (sub) {
    case 'create': {
      const name = values.name as string | undefined;
      if (!name || name.length > MAX_NAME) throw new UsageError(`keys create needs --name NAME (1–${MAX_NAME} characters)`);
      const scope = (values.scope as string | undefined) ?? 'ingest';
      if (scope !== 'ingest' && scope !== 'admin') throw new UsageError('--scope is ingest or admin');
      const { key: record, secret: key } = await withStore(config, (store) => issueKey(store, { name, scope }, Date.now()));
      const { id } = record;
      if (json) io.out(JSON.stringify({ name, key, id, scope }) + '\n');
      else io.out(`name: ${name}\nkey:  ${key}\n  (shown once: keep it now; only its hash is stored)\n`);
      return 0;
    }
    case 'list': {
      const keys = await withStore(config, (store) => store.listKeys());
      const rows = keys.map((k) => ({
        id: k.id,
        name: k.name,
        scope: k.scope,
        created_at: new Date(k.createdAt).toISOString(),
        revoked_at: isoTime(k.revokedAt),
      }));
      if (json) io.out(JSON.stringify({ keys: rows }) + '\n');
      else if (rows.length === 0) io.out('no keys\n');
      else for (const r of rows) io.out(`${r.id}  ${r.name}${r.revoked_at ? '  REVOKED ' + r.revoked_at : ''}\n`);
      return 0;
    }
    case 'revoke': {
      const which = positionals[0];
      if (!which) throw new UsageError('keys revoke needs NAME_OR_ID');
      const ok = await withStore(config, (store) => store.revokeKey(which, Date.now()));
      if (json) io.out(JSON.stringify({ key: which, revoked: ok }) + '\n');
      else io.err(ok ? `revoked ${which}\n` : `no active key ${which}\n`);
      return ok ? 0 : 1;
    }
    default:
      throw new UsageError(KEYS_USAGE);
  }
}
