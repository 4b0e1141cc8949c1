/**
 * BENCH CONTENDER: the practical ceiling for fan-out in Node when the backend publishes a few messages
 * at a time (issue 12). The frame-once server of ws-frame-once.ts (a bare `ws` server, no auth, no
 * history, a Set of subscribers per topic, each message framed ONCE) that also coalesces each
 * socket's frames per event-loop turn: a publish appends its frame to each subscriber's pending list
 * and marks the subscriber dirty; one `setImmediate` per turn then flushes every dirty subscriber with
 * ONE write (a single frame as-is, several concatenated into one buffer). Messages stay one WebSocket
 * frame each: only the socket writes (and so the syscalls and TCP segments) are shared.
 *
 *   node --import tsx bench/contenders/ws-coalesce.ts --port N
 *
 * Same wire protocol as ws-frame-once.ts, so the same load generator and publisher drive it:
 * WebSocket on `/`: the client sends text `sub <topic>` (any number), the server answers `ok <topic>`.
 * HTTP on the same port: `POST /publish?topic=<topic>` (body = the message, sent as a text frame) →
 * 204 once the frame is queued for every subscriber (written before the loop next polls for I/O);
 * `GET /healthz` → 200. SIGTERM: exit at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('--port N is required\n');
  process.exit(2);
}

/** A complete unmasked text frame (FIN set) around `payload`. */
function textFrame(payload: Buffer): Buffer {
  const len = payload.length;
  const h = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(h + len);
  frame[0] = 0x81;
  if (len < 126) frame[1] = len;
  else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  payload.copy(frame, h);
  return frame;
}

/** One subscriber connection: its net.Socket and the frames queued for it this turn. */
interface Peer {
  socket: Socket;
  pending: Buffer[];
  /** Bytes in `pending`. */
  bytes: number;
  closed: boolean;
}

const topics = new Map<string, Set<Peer>>();
/** Peers with frames pending, in the order they were first queued this turn. */
let dirty: Peer[] = [];
let scheduled = false;
const MAX_BODY = 1024 * 1024;

/** Writes every dirty peer's frames with one socket write each. */
function flush(): void {
  scheduled = false;
  const peers = dirty;
  dirty = [];
  for (const p of peers) {
    const frames = p.pending;
    const bytes = p.bytes;
    p.pending = [];
    p.bytes = 0;
    if (p.closed) continue;
    p.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes));
  }
}

function enqueue(subs: Set<Peer>, frame: Buffer): void {
  for (const p of subs) {
    if (p.pending.length === 0) dirty.push(p);
    p.pending.push(frame);
    p.bytes += frame.length;
  }
  if (!scheduled && dirty.length > 0) {
    scheduled = true;
    // The check phase: after every request the current poll phase delivered, before the next poll.
    setImmediate(flush);
  }
}

function publish(req: IncomingMessage, res: ServerResponse, topic: string): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) {
      res.writeHead(413, { 'content-length': 0 }).end();
      return;
    }
    const subs = topics.get(topic);
    if (subs) enqueue(subs, textFrame(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    res.writeHead(204).end();
  });
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'POST' && url.pathname === '/publish') return publish(req, res, url.searchParams.get('topic') ?? '');
  if (req.method === 'GET' && url.pathname === '/healthz') return void res.writeHead(200, { 'content-length': 2 }).end('ok');
  res.writeHead(404, { 'content-length': 0 }).end();
});
server.keepAliveTimeout = 120_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 4096 });
wss.on('connection', (ws, req) => {
  // The same net.Socket ws writes to: message frames go straight to it. `ok <topic>` goes through ws
  // and is sent before any message of that topic is queued, so the order on the wire holds.
  const peer: Peer = { socket: req.socket, pending: [], bytes: 0, closed: false };
  const mine = new Set<string>();
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString();
    if (!text.startsWith('sub ')) return void ws.close(1008, 'only "sub <topic>"');
    const topic = text.slice(4);
    let subs = topics.get(topic);
    if (!subs) topics.set(topic, (subs = new Set()));
    subs.add(peer);
    mine.add(topic);
    ws.send(`ok ${topic}`);
  });
  ws.on('close', () => {
    peer.closed = true;
    for (const t of mine) {
      const subs = topics.get(t);
      subs?.delete(peer);
      if (subs?.size === 0) topics.delete(t);
    }
  });
  ws.on('error', () => ws.terminate());
});

server.listen(port, values.host, () => process.stderr.write(`ws-coalesce listening on ${values.host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
