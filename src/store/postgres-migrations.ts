import type { PoolClient } from 'pg';
import { randomSecret } from '../core/ids.ts';

/**
 * Versioned migrations of a PostgreSQL store's schema. Each runs once, in order, recorded in
 * `schema_migrations`; all of them run in the caller's transaction under an advisory lock on the
 * schema's name, so that nodes starting together wait for the first one instead of racing it.
 * Append new versions; never edit one that has shipped.
 *
 * Times: `bigint` ms since the epoch where the application gives them (message, token, ticket
 * times); `timestamptz` from the database's clock for leases (nodes, connector leases, claims).
 */
const MIGRATIONS: { version: number; name: string; sql: (s: string) => string }[] = [
  {
    version: 1,
    name: 'registry, history, presence, leases',
    sql: (s) => `
CREATE TABLE ${s}.meta (k text PRIMARY KEY, v text NOT NULL);

CREATE TABLE ${s}.clients (
  id text PRIMARY KEY, name text NOT NULL, secret_hash text NOT NULL,
  subscribe text[] NOT NULL, publish text[] NOT NULL, created_at bigint NOT NULL, revoked_at bigint);
CREATE TABLE ${s}.keys (
  id text PRIMARY KEY, name text NOT NULL, scope text NOT NULL, hash text NOT NULL UNIQUE,
  created_at bigint NOT NULL, revoked_at bigint);
CREATE INDEX keys_name ON ${s}.keys (name);
CREATE TABLE ${s}.tokens (hash text PRIMARY KEY, client_id text NOT NULL, created_at bigint NOT NULL, last_used_at bigint NOT NULL);
CREATE INDEX tokens_client ON ${s}.tokens (client_id);
CREATE INDEX tokens_last_used ON ${s}.tokens (last_used_at);
CREATE TABLE ${s}.tickets (hash text PRIMARY KEY, token_hash text NOT NULL, expires_at bigint NOT NULL);
CREATE TABLE ${s}.changes (seq bigserial PRIMARY KEY, kind text NOT NULL, ref text NOT NULL);

CREATE TABLE ${s}.topics (topic text PRIMARY KEY, last_offset bigint NOT NULL, epoch text NOT NULL);
CREATE TABLE ${s}.messages (
  topic text NOT NULL, "offset" bigint NOT NULL, ts bigint NOT NULL, kind text NOT NULL, payload bytea NOT NULL,
  PRIMARY KEY (topic, "offset"));
CREATE INDEX messages_ts ON ${s}.messages (ts);
CREATE TABLE ${s}.idempotency (
  scope text NOT NULL, key text NOT NULL, topic text NOT NULL, "offset" bigint NOT NULL, ts bigint NOT NULL,
  request_hash text NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX idempotency_ts ON ${s}.idempotency (ts);

CREATE TABLE ${s}.nodes (
  node_id text PRIMARY KEY, instance_id text NOT NULL, address text NOT NULL, started_at bigint NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE TABLE ${s}.connections (
  id text PRIMARY KEY, client_id text NOT NULL, token_hash text NOT NULL, node_id text NOT NULL,
  connected_at bigint NOT NULL, remote_address text NOT NULL);
CREATE INDEX connections_token ON ${s}.connections (token_hash);
CREATE INDEX connections_client ON ${s}.connections (client_id);
CREATE INDEX connections_node ON ${s}.connections (node_id);
CREATE TABLE ${s}.subscriptions (
  connection_id text NOT NULL, topic text NOT NULL, since bigint NOT NULL, PRIMARY KEY (connection_id, topic));
CREATE INDEX subscriptions_topic ON ${s}.subscriptions (topic);

CREATE TABLE ${s}.leases (name text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL);
CREATE TABLE ${s}.claims (key text PRIMARY KEY, expires_at timestamptz NOT NULL);
`,
  },
  {
    version: 2,
    name: 'client presence rights',
    sql: (s) => `ALTER TABLE ${s}.clients ADD COLUMN IF NOT EXISTS presence text[] NOT NULL DEFAULT '{}';`,
  },
  {
    version: 3,
    name: 'claim_connection: a connection claim in one round trip',
    // What PostgresPresence.claim did in five statements of a transaction (lock, read, check, delete
    // replaced, insert), as one call: each round trip costs a connecting client's node CPU. PL/pgSQL
    // takes a fresh snapshot per statement, so the reads after the lock see every earlier claim.
    sql: (s) => `
CREATE FUNCTION ${s}.claim_connection(p_id text, p_client text, p_token text, p_node text, p_at bigint, p_addr text,
  p_replace boolean, p_max int, p_locks text[]) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  l text;
  h jsonb;
  others bigint;
BEGIN
  FOREACH l IN ARRAY p_locks LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(l, 0));
  END LOOP;
  SELECT jsonb_agg(jsonb_build_object('id', c.id, 'client_id', c.client_id, 'token_hash', c.token_hash, 'node_id', c.node_id,
      'connected_at', c.connected_at, 'remote_address', c.remote_address) ORDER BY c.connected_at, c.id)
    INTO h FROM ${s}.connections c JOIN ${s}.nodes n ON n.node_id = c.node_id AND n.expires_at > now()
    WHERE c.token_hash = p_token;
  IF h IS NOT NULL AND NOT p_replace THEN
    RETURN jsonb_build_object('ok', false, 'reason', 'duplicate', 'holders', h);
  END IF;
  IF p_max > 0 THEN
    SELECT count(*) INTO others FROM ${s}.connections c JOIN ${s}.nodes n ON n.node_id = c.node_id AND n.expires_at > now()
      WHERE c.client_id = p_client AND c.token_hash <> p_token;
    IF others >= p_max THEN
      RETURN jsonb_build_object('ok', false, 'reason', 'client_limit');
    END IF;
  END IF;
  IF h IS NOT NULL THEN
    DELETE FROM ${s}.subscriptions WHERE connection_id IN (SELECT x->>'id' FROM jsonb_array_elements(h) x);
    DELETE FROM ${s}.connections WHERE id IN (SELECT x->>'id' FROM jsonb_array_elements(h) x);
  END IF;
  INSERT INTO ${s}.connections (id, client_id, token_hash, node_id, connected_at, remote_address)
    SELECT p_id, p_client, p_token, p_node, p_at, p_addr
    WHERE EXISTS (SELECT 1 FROM ${s}.nodes WHERE node_id = p_node AND expires_at > now());
  IF NOT FOUND THEN
    RAISE EXCEPTION 'presence: the lease of node % has expired; not claiming', p_node;
  END IF;
  RETURN jsonb_build_object('ok', true, 'holders', h);
END
$fn$;
`,
  },
];

/** Creates the schema if missing and applies the migrations it lacks. Run inside a transaction. */
export async function migrate(c: PoolClient, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`hubcast.migrate\x1f${schema}`]);
  // Asked first: a role without CREATE on the database may still use a schema made for it.
  const exists = (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount! > 0;
  if (!exists) await c.query(`CREATE SCHEMA ${s}`);
  await c.query(
    `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  const done = new Set((await c.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`)).rows.map((r) => r.version));
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    await c.query(m.sql(s));
    await c.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
  }
  // The store's epoch: chosen once, when the schema is new (see History in store.ts).
  await c.query(`INSERT INTO ${s}.meta (k, v) VALUES ('epoch', $1) ON CONFLICT (k) DO NOTHING`, [randomSecret(9)]);
}
