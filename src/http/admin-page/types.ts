/** The admin API's answers, as far as the dashboard reads them (docs/http-api.md#admin-api, GET /openapi.json). */

export type { Overview } from '../admin/overview.ts';
export type { ConnectionView as Connection } from '../admin/connections.ts';

export interface Client {
  id: string;
  name: string;
  subscribe: string[];
  publish: string[];
  created_at: string;
  revoked_at: string | null;
  connections: number;
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
