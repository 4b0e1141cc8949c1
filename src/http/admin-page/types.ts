/** The admin API's answers, as far as the dashboard reads them (docs/http-api.md#admin-api, GET /openapi.json). */

export interface Overview {
  node: { id: string; version: string; started_at: string | null; uptime_s: number };
  nodes: { id: string; connections: number }[];
  connections: number;
  subscriptions: number;
  topics: number;
  rates: { published_per_s: number; delivered_per_s: number; connects_per_s: number };
  store: { type: string; ok: boolean };
  broker: { type: string; ok: boolean };
  alerts: { recent: number; open?: number };
}

export interface Client {
  id: string;
  name: string;
  subscribe: string[];
  publish: string[];
  created_at: string;
  revoked_at: string | null;
  connections: number;
}

export interface Connection {
  id: string;
  client_id: string;
  node: string;
  address: string;
  connected_at: string;
  /** Null for a connection on another node of a cluster. */
  subscriptions: string[] | null;
  queued_bytes: number | null;
}

export interface Topic {
  topic: string;
  last_offset: number;
  subscribers: number;
  published_per_s: number;
}

export interface Connector {
  name: string;
  type: string;
  status?: string;
  state?: string;
  lag_s?: number | null;
  last_record_at?: string | null;
  records_in?: number;
  dead_letters?: number;
  dead_letters_stored?: number;
  last_error?: string | null;
}

export interface DeadLetter {
  id: number;
  connector: string;
  reason: string;
  at: string;
  size: number;
}

export interface Alert {
  id: string;
  kind: string;
  at: string;
  subject: string;
  summary: string;
  sent: { channel: string; status: string; at: string }[];
}

export interface ConnectionEvent {
  event: 'open' | 'close';
  id: string;
  client_id: string;
  address: string;
  code?: number;
}
