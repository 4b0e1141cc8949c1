/* global document, window, location, history, sessionStorage */
// The demo page's script (served at /demo/demo.js when demo.enabled). Plain browser JavaScript, no
// build step: the SDK comes from this Hubcast's own GET /client.js. Everything a message carries is
// written with textContent, never as HTML.

const STORAGE_KEY = 'hubcast-demo';
const MAX_ROWS = 300;
const $ = (id) => document.getElementById(id);

/**
 * `#token=…&topic=…&chat=…` (from `hubcast demo`). The fragment is never sent in a request; once read,
 * the token leaves the address bar too and is kept in this tab's sessionStorage (a reload finds it).
 * `chat` is present only when the client may publish there.
 */
function readSettings() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    const settings = { token: fragment.get('token'), topic: fragment.get('topic') || 'demo.feed', chat: fragment.get('chat') || '' };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
    history.replaceState(null, '', location.pathname + location.search);
    return settings;
  }
  const saved = sessionStorage.getItem(STORAGE_KEY);
  return saved ? JSON.parse(saved) : undefined;
}

function logEvent(text, bad = false) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (bad) li.className = 'bad';
  append($('events'), li);
}

function append(list, li) {
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.appendChild(li);
  while (list.children.length > MAX_ROWS) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function describeError(err) {
  if (!err) return 'unknown error';
  return [err.code, err.message].filter(Boolean).join(': ') || String(err);
}

/** "closed 1001 going away, retrying in 0.8 s" from whatever the state event tells. */
function describeState(state, info = {}) {
  const parts = [state];
  if (info.code !== undefined) parts.push(`close ${info.code}${info.reason ? ' ' + info.reason : ''}`);
  else if (info.reason) parts.push(String(info.reason));
  if (info.error) parts.push(describeError(info.error));
  const delay = info.delayMs ?? info.retryInMs ?? info.backoffMs;
  if (typeof delay === 'number') parts.push(`retrying in ${(delay / 1000).toFixed(1)} s`);
  return parts.join(', ');
}

function renderData(m) {
  if (m.binary) return `<${m.binary.byteLength} bytes of binary>`;
  return typeof m.data === 'string' ? m.data : JSON.stringify(m.data);
}

const counters = { reconnects: 0, replayed: 0, gaps: 0 };
function bump(name) {
  counters[name] += 1;
  $(name).textContent = String(counters[name]);
}

/**
 * Subscribes from the start of the topic's history. A message whose offset is at most the topic's
 * latest offset when the subscription was answered came from history: the page marks it "replayed".
 */
function follow(hub, topic, list, render) {
  let replayUpTo = 0;
  const sub = hub.subscribe(topic, { since: { offset: 0 } });
  sub.on('subscribed', (info) => {
    replayUpTo = info?.offset ?? 0;
    const since = info?.since?.offset;
    const resumed =
      since === undefined
        ? ''
        : `, ${since === 0 ? 'from the start' : `resumed after ${since}`}${info.recovered === false ? ': history not recovered' : ''}`;
    logEvent(`subscribed to ${topic} (latest offset ${replayUpTo}${resumed})`);
  });
  sub.on('gap', () => {
    bump('gaps');
    logEvent(`gap on ${topic}: some messages are no longer in history (trimmed, or a new epoch)`, true);
  });
  sub.on('error', (err) => logEvent(`${topic}: ${describeError(err)}`, true));
  sub.on('message', (m) => {
    const replayed = m.offset <= replayUpTo;
    if (replayed) bump('replayed');
    const li = document.createElement('li');
    li.dataset.topic = m.topic;
    li.dataset.offset = String(m.offset);
    if (replayed) li.dataset.replayed = 'true';
    const offset = document.createElement('span');
    offset.className = 'offset';
    offset.textContent = `#${m.offset} ${new Date(m.ts).toLocaleTimeString()}`;
    li.append(offset, ...render(m));
    if (replayed) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = 'replayed';
      li.append(tag);
    }
    append(list, li);
  });
  return sub;
}

function feedRow(m) {
  const data = document.createElement('span');
  data.className = 'data';
  data.textContent = renderData(m);
  return [data];
}

function chatRow(m) {
  const from = document.createElement('span');
  from.className = 'from';
  const text = document.createElement('span');
  text.className = 'text';
  if (m.data && typeof m.data === 'object' && typeof m.data.text === 'string') {
    from.textContent = `${String(m.data.from ?? '?')}:`;
    text.textContent = m.data.text;
  } else text.textContent = renderData(m);
  return [from, text];
}

function setupChat(hub, topic) {
  $('chat-section').hidden = false;
  $('chat-topic').textContent = topic;
  follow(hub, topic, $('chat'), chatRow);
  const name = $('chat-name');
  name.value = sessionStorage.getItem(`${STORAGE_KEY}-name`) || `tab-${Math.random().toString(36).slice(2, 6)}`;
  name.addEventListener('change', () => sessionStorage.setItem(`${STORAGE_KEY}-name`, name.value));
  $('chat-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('chat-text').value.trim();
    if (!text) return;
    $('chat-text').value = '';
    try {
      await hub.publish(topic, { from: name.value || 'anonymous', text });
    } catch (err) {
      logEvent(`could not send: ${describeError(err)}`, true);
      $('chat-text').value = text;
    }
  });
}

async function start() {
  const settings = readSettings();
  if (!settings) {
    $('missing').hidden = false;
    return;
  }
  let Hubcast;
  try {
    ({ Hubcast } = await import('/client.js'));
  } catch (err) {
    $('missing').hidden = false;
    $('missing').querySelector('p').textContent = `Could not load the SDK from /client.js (${err.message}); see the server's answer there.`;
    return;
  }
  $('app').hidden = false;
  $('feed-topic').textContent = settings.topic;
  $('feed-hint').textContent = `hubcast pub ${settings.topic} '{"hello":"world"}'`;

  const hub = new Hubcast({ url: location.origin, token: settings.token });
  let connectedBefore = false;
  hub.on('state', (state, info) => {
    $('state').textContent = state;
    $('state').dataset.state = state;
    if (state === 'connected') {
      if (connectedBefore) bump('reconnects');
      connectedBefore = true;
    }
    logEvent(describeState(state, info), state === 'closed');
  });
  hub.on('welcome', (w) => {
    $('client').textContent = w?.client_id ?? w?.clientId ?? '?';
  });
  hub.on('error', (err) => logEvent(describeError(err), true));

  follow(hub, settings.topic, $('feed'), feedRow);
  if (settings.chat) setupChat(hub, settings.chat);
  window.hubcastDemo = { hub };
}

start().catch((err) => logEvent(`the demo failed: ${describeError(err)}`, true));
