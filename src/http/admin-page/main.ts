/**
 * The admin dashboard (GET /admin, docs/admin.md). Signs in with an admin key (kept in session
 * storage), then follows the node live over `GET /admin/api/stream` (an overview a second and each
 * connection opened or closed), falling back to polling `/admin/api/overview` every 2 s while the
 * stream is unavailable. Every action is one admin API call, with the key. The page holds no secret
 * of its own and builds every text with `textContent` (names and topics are never markup).
 */
import { Api, ApiError, explain } from './api.ts';
import { LiveChart } from './chart.ts';
import { button, code, morePages, prepareTable, syncRows, time, type Column } from './table.ts';
import type { Alert, Client, Connection, ConnectionEvent, Connector, DeadLetter, Overview, Topic } from './types.ts';
import './admin.css';

const STORAGE_KEY = 'hubcast.adminKey';
/** Lists other than connections are refreshed this often (the overview and connections are live). */
const REFRESH_MS = 5000;
const POLL_MS = 2000;
/** How long the page polls after the stream failed before trying the stream again. */
const STREAM_RETRY_MS = 10_000;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`admin page: #${id} is missing`);
  return el as T;
};
const table = (id: string) => $<HTMLTableElement>(id);
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

function notice(text: string, kind: 'ok' | 'error' = 'ok'): void {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
}

const fmtRate = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const fmtBytes = (n: number | null) =>
  n === null ? '–' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
function fmtUptime(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
const patterns = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter(Boolean);
const list = (items: string[] | null) => (items === null ? '–' : items.length ? items.join(', ') : 'none');

/** A signed-in session: its key, its timers and requests (all stopped by `end`). */
class Session {
  readonly api: Api;
  readonly #stop = new AbortController();
  readonly #charts: { conn: LiveChart; rate: LiveChart };
  /** Connections as last listed, plus those the stream announced since. */
  #connections = new Map<string, Connection>();
  #clientsById = new Map<string, Client>();
  #refreshConnections: ReturnType<typeof setTimeout> | undefined;
  #busy = new Set<string>();
  #creating = false;
  /** The overview's alert and topic counts last seen. */
  #seen: string | undefined;

  constructor(key: string, charts: { conn: LiveChart; rate: LiveChart }) {
    this.api = new Api(key);
    this.#charts = charts;
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  start(first: Overview): void {
    this.#overview(first);
    void this.refreshAll();
    void this.#live();
    const every = setInterval(() => void this.refreshLists(), REFRESH_MS);
    this.signal.addEventListener('abort', () => clearInterval(every), { once: true });
  }

  end(): void {
    this.#stop.abort();
    clearTimeout(this.#refreshConnections);
  }

  /** A call of the admin API; a refused key ends the session (back to the sign-in form). */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.api.call<T>(method, path, body, this.signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.#refused(err);
      throw err;
    }
  }

  /** The key was refused: back to the sign-in form (unless this session already ended, a late answer). */
  #refused(err: ApiError): void {
    if (session === this) signOut(`Signed out: the key is no longer accepted. ${explain(err)}`);
  }

  // --- live: the event stream, or polling while it is unavailable -------------------------------

  async #live(): Promise<void> {
    while (!this.signal.aborted) {
      try {
        await this.api.stream(
          (event, data) => this.#event(event, data),
          this.signal,
          () => setMode('stream', 'live'),
        );
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return this.#refused(err);
        setMode('polling', `polling every ${POLL_MS / 1000} s: ${explain(err)}`);
      }
      if (this.signal.aborted) return;
      if ($('live').dataset.mode === 'stream') setMode('polling', `polling every ${POLL_MS / 1000} s: the event stream ended`);
      const until = Date.now() + STREAM_RETRY_MS;
      while (!this.signal.aborted && Date.now() < until) {
        await this.#poll();
        await sleep(POLL_MS, this.signal);
      }
    }
  }

  async #poll(): Promise<void> {
    try {
      this.#overview(await this.call<Overview>('GET', '/admin/api/overview'));
      await this.refreshConnections();
      if ($('live').dataset.mode === 'offline') setMode('polling', `polling every ${POLL_MS / 1000} s`);
    } catch (err) {
      if (!this.signal.aborted) setMode('offline', `offline: ${explain(err)}`);
    }
  }

  #event(event: string, data: unknown): void {
    if (event === 'overview') this.#overview(data as Overview);
    else if (event === 'connection') {
      const e = data as ConnectionEvent;
      // Shown at once from the event; the full row (subscriptions, node) follows with the list.
      if (e.event === 'open' && !this.#connections.has(e.id))
        this.#connections.set(e.id, {
          id: e.id,
          client_id: e.client_id,
          address: e.address,
          node: '',
          connected_at: new Date().toISOString(),
          subscriptions: [],
          queued_bytes: 0,
        });
      else if (e.event === 'close') this.#connections.delete(e.id);
      this.#renderConnections(null);
      this.#soon();
    } else if (event === 'dropped') this.#soon();
  }

  /** Re-lists connections and clients shortly (events come in bursts). */
  #soon(): void {
    clearTimeout(this.#refreshConnections);
    this.#refreshConnections = setTimeout(() => {
      void this.refreshConnections();
      void this.refreshClients();
    }, 250);
  }

  #overview(o: Overview): void {
    const set = (id: string, text: string, ok?: boolean) => {
      const el = $(id);
      el.textContent = text;
      if (ok !== undefined) el.dataset.ok = String(ok);
    };
    set('s-connections', String(o.connections));
    set('s-subscriptions', String(o.subscriptions));
    set('s-topics', String(o.topics));
    set('s-published', fmtRate(o.rates.published_per_s));
    set('s-delivered', fmtRate(o.rates.delivered_per_s));
    set('s-connects', fmtRate(o.rates.connects_per_s));
    set('s-store', `${o.store.type} ${o.store.ok ? 'ok' : 'failing'}`, o.store.ok);
    set('s-broker', `${o.broker.type} ${o.broker.ok ? 'ok' : 'down'}`, o.broker.ok);
    set('s-alerts', String(o.alerts.recent), o.alerts.recent === 0);
    $('node').textContent = `node ${o.node.id} · v${o.node.version} · up ${fmtUptime(o.node.uptime_s)}`;
    $('nodes').textContent = o.nodes.length > 1 ? `Nodes: ${o.nodes.map((n) => `${n.id} (${n.connections} connections)`).join(', ')}` : '';
    // A new alert or topic shows at once rather than at the next refresh of the lists.
    const seen = `${o.alerts.recent}/${o.topics}`;
    if (this.#seen !== undefined && seen !== this.#seen) void Promise.all([this.refreshAlerts(), this.refreshTopics()]);
    this.#seen = seen;
    const now = Date.now();
    this.#charts.conn.push(now, [o.connections, o.subscriptions]);
    this.#charts.rate.push(now, [o.rates.published_per_s, o.rates.delivered_per_s]);
    $('chart-conn').dataset.points = String(this.#charts.conn.points);
  }

  // --- lists -----------------------------------------------------------------------------------

  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshConnections(), this.refreshLists()]);
  }

  async refreshLists(): Promise<void> {
    if (document.hidden) return;
    await Promise.all([this.refreshClients(), this.refreshTopics(), this.refreshConnectors(), this.refreshAlerts()]);
  }

  /** Runs `fn` unless the same list is being fetched already; failures show in the notice line. */
  async #once(what: string, fn: () => Promise<void>): Promise<void> {
    if (this.#busy.has(what) || this.signal.aborted) return;
    this.#busy.add(what);
    try {
      await fn();
    } catch (err) {
      if (!this.signal.aborted && !(err instanceof ApiError && err.status === 401))
        notice(`Could not load ${what}: ${explain(err)}`, 'error');
    } finally {
      this.#busy.delete(what);
    }
  }

  refreshConnections(): Promise<void> {
    return this.#once('connections', async () => {
      const r = await this.call<{ connections: Connection[]; next_cursor: string | null }>('GET', '/admin/api/connections?limit=200');
      this.#connections = new Map(r.connections.map((c) => [c.id, c]));
      this.#renderConnections(r.next_cursor);
    });
  }

  #renderConnections(nextCursor: string | null | undefined): void {
    const t = table('connections');
    const items = [...this.#connections.values()].sort((a, b) =>
      a.connected_at < b.connected_at ? -1 : a.connected_at > b.connected_at ? 1 : 0,
    );
    const columns: Column<Connection>[] = [
      { label: 'Connection', col: 'id', value: (c) => code(c.id) },
      { label: 'Client', col: 'client', value: (c) => this.#clientsById.get(c.client_id)?.name ?? c.client_id },
      { label: 'Node', col: 'node', value: (c) => c.node },
      { label: 'Address', col: 'address', value: (c) => c.address },
      { label: 'Since', col: 'since', value: (c) => time(c.connected_at) },
      { label: 'Subscriptions', col: 'subscriptions', value: (c) => list(c.subscriptions) },
      { label: 'Queued', col: 'queued', value: (c) => fmtBytes(c.queued_bytes) },
    ];
    syncRows(t, items, (c) => c.id, columns, {
      empty: 'No live connections.',
      actions: (c) => [button('Kick', `Kick connection ${c.id} (client ${c.client_id})`, 'kick', () => void this.kick(c))],
      mark: (c, tr) => (tr.dataset.client = c.client_id),
    });
    if (nextCursor !== null) morePages(t, items.length, nextCursor);
  }

  refreshClients(): Promise<void> {
    return this.#once('clients', async () => {
      const r = await this.call<{ clients: Client[]; next_cursor: string | null }>('GET', '/admin/api/clients?limit=200');
      this.#clientsById = new Map(r.clients.map((c) => [c.id, c]));
      // Newest first: a client just created is at the top.
      const items = [...r.clients].reverse();
      const columns: Column<Client>[] = [
        { label: 'Client', col: 'id', value: (c) => code(c.id) },
        { label: 'Name', col: 'name', value: (c) => c.name },
        { label: 'Subscribe', col: 'subscribe', value: (c) => list(c.subscribe) },
        { label: 'Publish', col: 'publish', value: (c) => list(c.publish) },
        { label: 'Created', col: 'created', value: (c) => time(c.created_at) },
        { label: 'Connections', col: 'connections', value: (c) => c.connections },
        {
          label: 'Status',
          col: 'status',
          value: (c) => {
            if (!c.revoked_at) return 'active';
            const s = document.createElement('span');
            s.append('revoked ', time(c.revoked_at) as Node);
            return s;
          },
        },
      ];
      const t = table('clients');
      syncRows(t, items, (c) => c.id, columns, {
        empty: 'No clients yet.',
        actions: (c) => (c.revoked_at ? [] : [button('Revoke', `Revoke client ${c.name} (${c.id})`, 'revoke', () => void this.revoke(c))]),
        mark: (c, tr) => (tr.dataset.revoked = String(c.revoked_at !== null)),
      });
      morePages(t, items.length, r.next_cursor);
      this.#renderConnections(null);
    });
  }

  refreshTopics(): Promise<void> {
    return this.#once('topics', async () => {
      const r = await this.call<{ topics: Topic[]; next_cursor: string | null }>('GET', '/admin/api/topics?limit=200');
      const t = table('topics');
      syncRows(
        t,
        r.topics,
        (x) => x.topic,
        [
          { label: 'Topic', col: 'topic', value: (x) => code(x.topic) },
          { label: 'Last offset', col: 'offset', value: (x) => x.last_offset },
          { label: 'Subscribers', col: 'subscribers', value: (x) => x.subscribers },
          { label: 'Published/s', col: 'rate', value: (x) => fmtRate(x.published_per_s) },
        ],
        { empty: 'No topics yet.' },
      );
      morePages(t, r.topics.length, r.next_cursor);
    });
  }

  refreshConnectors(): Promise<void> {
    return this.#once('connectors', async () => {
      const [c, d] = await Promise.all([
        this.call<{ connectors: Connector[] }>('GET', '/admin/api/connectors'),
        this.call<{ dead_letters: DeadLetter[]; next_cursor: string | null }>('GET', '/admin/api/dead-letters?limit=200'),
      ]);
      syncRows(
        table('connectors'),
        c.connectors,
        (x) => x.name,
        [
          { label: 'Connector', col: 'name', value: (x) => x.name },
          { label: 'Type', col: 'type', value: (x) => x.type },
          { label: 'Status', col: 'status', value: (x) => x.status ?? x.state },
          { label: 'Lag', col: 'lag', value: (x) => (x.lag_s === null || x.lag_s === undefined ? '–' : `${x.lag_s.toFixed(1)} s`) },
          { label: 'Last record', col: 'last', value: (x) => time(x.last_record_at) },
          { label: 'Records', col: 'records', value: (x) => x.records_in },
          { label: 'Dead letters', col: 'dead', value: (x) => x.dead_letters_stored ?? x.dead_letters },
          { label: 'Last error', col: 'error', value: (x) => x.last_error },
        ],
        { empty: 'No connectors configured on this node.' },
      );
      const t = table('dead-letters');
      syncRows(
        t,
        d.dead_letters,
        (x) => String(x.id),
        [
          { label: 'Id', col: 'id', value: (x) => x.id },
          { label: 'Connector', col: 'connector', value: (x) => x.connector },
          { label: 'Reason', col: 'reason', value: (x) => x.reason },
          { label: 'At', col: 'at', value: (x) => time(x.at) },
          { label: 'Size', col: 'size', value: (x) => fmtBytes(x.size) },
        ],
        {
          empty: 'No dead letters.',
          actions: (x) => [
            button('Retry', `Retry dead letter ${x.id} of ${x.connector}`, 'retry', () => void this.retry(x)),
            button('Drop', `Drop dead letter ${x.id} of ${x.connector}`, 'drop', () => void this.drop(x)),
          ],
        },
      );
      morePages(t, d.dead_letters.length, d.next_cursor);
    });
  }

  refreshAlerts(): Promise<void> {
    return this.#once('alerts', async () => {
      const r = await this.call<{ alerts: Alert[] }>('GET', '/admin/api/alerts?limit=50');
      syncRows(
        table('alerts'),
        r.alerts,
        (a) => a.id,
        [
          { label: 'At', col: 'at', value: (a) => time(a.at) },
          { label: 'Kind', col: 'kind', value: (a) => a.kind },
          { label: 'Subject', col: 'subject', value: (a) => a.subject },
          { label: 'Summary', col: 'summary', value: (a) => a.summary },
          { label: 'Sent', col: 'sent', value: (a) => a.sent.map((s) => `${s.channel}: ${s.status}`).join(', ') || 'nowhere' },
        ],
        { empty: 'No recent alerts.' },
      );
    });
  }

  // --- actions ---------------------------------------------------------------------------------

  async kick(c: Connection): Promise<void> {
    try {
      const r = await this.call<{ kicked: boolean; node: string }>('DELETE', `/admin/api/connections/${encodeURIComponent(c.id)}`);
      notice(`Connection ${c.id} kicked (closed with 4503 on node ${r.node}).`);
    } catch (err) {
      notice(`Could not kick ${c.id}: ${explain(err)}`, 'error');
    }
    await this.refreshConnections();
  }

  async revoke(c: Client): Promise<void> {
    if (
      !window.confirm(
        `Revoke client "${c.name}" (${c.id})? Its tokens stop working and its connections close (4500). This cannot be undone.`,
      )
    )
      return;
    try {
      const r = await this.call<{ client: Client; closed: number }>('DELETE', `/admin/api/clients/${encodeURIComponent(c.id)}`);
      notice(`Client ${c.name} (${c.id}) revoked: ${r.closed} connection${r.closed === 1 ? '' : 's'} closed on this node.`);
    } catch (err) {
      notice(`Could not revoke ${c.id}: ${explain(err)}`, 'error');
    }
    await Promise.all([this.refreshClients(), this.refreshConnections()]);
  }

  async retry(d: DeadLetter): Promise<void> {
    try {
      const r = await this.call<{
        retried: boolean;
        topic?: string | null;
        offset?: number | null;
        dead_letter?: { id: number; reason: string };
      }>('POST', `/admin/api/dead-letters/${d.id}/retry`);
      if (r.retried) notice(`Dead letter ${d.id} retried: published${r.topic ? ` to ${r.topic} at offset ${r.offset}` : ''}.`);
      else
        notice(
          `Dead letter ${d.id} failed again${r.dead_letter ? `: ${r.dead_letter.reason} (now dead letter ${r.dead_letter.id})` : ''}.`,
          'error',
        );
    } catch (err) {
      notice(`Could not retry dead letter ${d.id}: ${explain(err)}`, 'error');
    }
    await Promise.all([this.refreshConnectors(), this.refreshTopics()]);
  }

  async drop(d: DeadLetter): Promise<void> {
    if (!window.confirm(`Drop dead letter ${d.id} of ${d.connector}? Its record is deleted for good.`)) return;
    try {
      await this.call('DELETE', `/admin/api/dead-letters/${d.id}`);
      notice(`Dead letter ${d.id} dropped.`);
    } catch (err) {
      notice(`Could not drop dead letter ${d.id}: ${explain(err)}`, 'error');
    }
    await this.refreshConnectors();
  }

  async createClient(form: HTMLFormElement): Promise<void> {
    const name = $<HTMLInputElement>('client-name').value.trim();
    const error = $('client-error');
    error.textContent = '';
    if (!name) {
      error.textContent = 'A client needs a name.';
      $('client-name').focus();
      return;
    }
    // Not `disabled` while the request runs: that would take the focus away from the button.
    if (this.#creating) return;
    this.#creating = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const r = await this.call<{ client: Client; secret: string }>('POST', '/admin/api/clients', {
        name,
        subscribe: patterns($<HTMLInputElement>('client-subscribe').value),
        publish: patterns($<HTMLInputElement>('client-publish').value),
      });
      form.reset();
      notice(`Client ${r.client.name} (${r.client.id}) created.`);
      showSecret(r.client.id, r.secret);
      void this.refreshClients();
    } catch (err) {
      error.textContent = explain(err);
    } finally {
      this.#creating = false;
      form.removeAttribute('aria-busy');
    }
  }

  async publish(): Promise<void> {
    const topic = $<HTMLInputElement>('publish-topic').value.trim();
    const text = $<HTMLTextAreaElement>('publish-data').value;
    const error = $('publish-error');
    error.textContent = '';
    if (!topic) {
      error.textContent = 'Name a topic to publish to.';
      $('publish-topic').focus();
      return;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      error.textContent = `The data is not valid JSON: ${(err as Error).message}`;
      $('publish-data').focus();
      return;
    }
    try {
      const r = await this.call<{ topic: string; offset: number }>('POST', `/admin/api/topics/${encodeURIComponent(topic)}/messages`, {
        data,
      });
      notice(`Published to ${r.topic} at offset ${r.offset}.`);
      void this.refreshTopics();
    } catch (err) {
      error.textContent = explain(err);
    }
  }
}

// --- the page --------------------------------------------------------------------------------------

let session: Session | undefined;
let charts: { conn: LiveChart; rate: LiveChart } | undefined;

function setMode(mode: 'off' | 'stream' | 'polling' | 'offline', text: string): void {
  const live = $('live');
  if (live.dataset.mode === mode && live.textContent === text) return;
  live.dataset.mode = mode;
  live.textContent = text;
}

function showSecret(id: string, secret: string): void {
  const dialog = $<HTMLDialogElement>('secret-dialog');
  $<HTMLInputElement>('secret-id').value = id;
  const value = $<HTMLInputElement>('secret-value');
  value.value = secret;
  $('secret-copied').textContent = '';
  dialog.showModal();
  value.focus();
  value.select();
}

async function copySecret(): Promise<void> {
  const value = $<HTMLInputElement>('secret-value');
  const status = $('secret-copied');
  try {
    if (!navigator.clipboard) throw new Error('no clipboard API here');
    await navigator.clipboard.writeText(value.value);
    status.textContent = 'Copied to the clipboard.';
  } catch {
    // Not a secure context (plain HTTP to another host), or no permission: select it for Ctrl+C.
    value.focus();
    value.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    status.textContent = copied ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (⌘C) to copy it.';
  }
}

function showSignIn(message = ''): void {
  $('dash').hidden = true;
  $('sign-out').hidden = true;
  $('signin').hidden = false;
  $('node').textContent = '';
  $('signin-error').textContent = message;
  setMode('off', 'signed out');
  const key = $<HTMLInputElement>('key');
  key.value = '';
  key.setAttribute('aria-invalid', String(message !== ''));
  key.focus();
}

function signOut(message = ''): void {
  session?.end();
  session = undefined;
  sessionStorage.removeItem(STORAGE_KEY);
  showSignIn(message);
}

async function signIn(key: string, restoring: boolean): Promise<void> {
  const error = $('signin-error');
  error.textContent = restoring ? '' : 'Signing in…';
  let first: Overview;
  try {
    first = await new Api(key).get<Overview>('/admin/api/overview');
  } catch (err) {
    if (restoring) sessionStorage.removeItem(STORAGE_KEY);
    const why =
      err instanceof ApiError && err.status === 401
        ? `This key was refused: ${explain(err)}`
        : err instanceof ApiError && err.status === 403
          ? `This address may not use the admin API (admin.allow): ${explain(err)}`
          : explain(err);
    showSignIn(why);
    return;
  }
  sessionStorage.setItem(STORAGE_KEY, key);
  error.textContent = '';
  $('signin').hidden = true;
  $('dash').hidden = false;
  $('sign-out').hidden = false;
  $<HTMLInputElement>('key').value = '';
  charts ??= {
    conn: new LiveChart($('chart-conn'), [
      { label: 'connections', color: '#2f6fd6' },
      { label: 'subscriptions', color: '#d9822b' },
    ]),
    rate: new LiveChart($('chart-rate'), [
      { label: 'published/s', color: '#2f9e5b' },
      { label: 'delivered/s', color: '#b2439a' },
    ]),
  };
  session = new Session(key, charts);
  session.start(first);
  if (!restoring) $('overview-title').focus();
}

function start(): void {
  for (const t of document.querySelectorAll('table')) prepareTable(t);
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $<HTMLInputElement>('key').value.trim();
    if (!key) {
      $('signin-error').textContent = 'Enter an admin key.';
      $('key').setAttribute('aria-invalid', 'true');
      $('key').focus();
      return;
    }
    void signIn(key, false);
  });
  $('sign-out').addEventListener('click', () => signOut());
  $('client-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void session?.createClient(e.target as HTMLFormElement);
  });
  $('publish-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void session?.publish();
  });
  $('secret-copy').addEventListener('click', () => void copySecret());
  const dialog = $<HTMLDialogElement>('secret-dialog');
  $('secret-done').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    // The secret does not stay in the page once the dialog is closed.
    $<HTMLInputElement>('secret-value').value = '';
    $<HTMLInputElement>('secret-id').value = '';
    // Back to what opened it.
    $('client-create').focus();
  });
  const saved = sessionStorage.getItem(STORAGE_KEY);
  if (saved) void signIn(saved, true);
  else showSignIn();
}

start();
