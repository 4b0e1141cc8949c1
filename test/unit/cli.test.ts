import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/server.ts';

describe('cli', () => {
  it('clients create prints one JSON object and stores only a hash of the secret', async () => {
    const dir = tempDir();
    const r = await cli([
      'clients',
      'create',
      '--name',
      'shop',
      '--subscribe',
      'orders.*',
      '--subscribe',
      'alerts.>',
      '--publish',
      'chat.>',
      '--json',
      '--data-dir',
      dir,
    ]);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ name: 'shop', subscribe: ['orders.*', 'alerts.>'], publish: ['chat.>'] });
    expect(o.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const db = new Database(join(dir, 'hubcast.db'), { readonly: true });
    const row = db.prepare('SELECT * FROM clients WHERE id = ?').get(o.client_id) as Record<string, string>;
    db.close();
    expect(row.secret_hash).toMatch(/^scrypt\$/);
    expect(JSON.stringify(row)).not.toContain(o.client_secret);

    const list = await cli(['clients', 'list', '--json', '--data-dir', dir]);
    expect(JSON.parse(list.out).clients).toHaveLength(1);
    expect(list.out).not.toContain(o.client_secret);
    expect((await cli(['clients', 'revoke', o.client_id, '--data-dir', dir])).code).toBe(0);
    expect((await cli(['clients', 'revoke', o.client_id, '--data-dir', dir])).code).toBe(1);
    expect(JSON.parse((await cli(['clients', 'list', '--json', '--data-dir', dir])).out).clients[0].revoked_at).not.toBeNull();
  });

  it('keys create/list/revoke', async () => {
    const dir = tempDir();
    const r = await cli(['keys', 'create', '--name', 'erp', '--json', '--data-dir', dir]);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ name: 'erp' });
    expect(o.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const list = await cli(['keys', 'list', '--json', '--data-dir', dir]);
    expect(JSON.parse(list.out).keys).toEqual([expect.objectContaining({ name: 'erp', revoked_at: null })]);
    expect(list.out).not.toContain(o.key);
    expect((await cli(['keys', 'revoke', 'erp', '--data-dir', dir])).code).toBe(0);
  });

  it('rejects bad usage and bad config with exit code 2 and a message', async () => {
    const dir = tempDir();
    const bad = await cli(['clients', 'create', '--name', 'x', '--subscribe', 'a..b', '--data-dir', dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not a valid topic pattern/);
    const noName = await cli(['keys', 'create', '--data-dir', dir]);
    expect(noName.code).toBe(2);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    const flag = await cli(['clients', 'list', '--no-such-flag']);
    expect(flag.code).toBe(2);
    const cfg = await cli(['config', 'print', '--history-size', 'abc']);
    expect(cfg.code).toBe(2);
    expect(cfg.err).toMatch(/history\.size/);
  });

  it('config print shows every key with its doc; --json prints only the config', async () => {
    const r = await cli(['config', 'print', '--port', '9999']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^port = 9999 {3}\(changed\)$/m);
    expect(r.out).toMatch(/history\.size = 1000\n\s+# Messages kept per topic/);
    const j = await cli(['config', 'print', '--json']);
    expect(JSON.parse(j.out).history.size).toBe(1000);
    // A password inside a URL is never printed.
    const url = ['--alerts-email-smtp-url', 'smtp://bob:s3cret@127.0.0.1:2525', '--alerts-email-to', 'ops@example.test'];
    const human = await cli(['config', 'print', ...url]);
    const json = await cli(['config', 'print', '--json', ...url]);
    expect(human.out).toContain('smtp://bob:***@127.0.0.1:2525');
    expect(human.out + json.out).not.toContain('s3cret');
  });
});
