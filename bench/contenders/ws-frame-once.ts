/**
 * BENCH CONTENDER: the practical ceiling for one write per recipient in Node. A bare `ws` server (no
 * auth, no history) keeping a Set of sockets per topic; a publish frames the message ONCE and writes
 * the same bytes to every subscriber's underlying net.Socket.
 *
 *   node --import tsx bench/contenders/ws-frame-once.ts --port N
 *
 * WebSocket on `/`: the client sends text `sub <topic>` (any number), the server answers `ok <topic>`.
 * HTTP on the same port: `POST /publish?topic=<topic>` (body = the message, sent as a text frame) →
 * 204 after the writes; `GET /healthz` → 200. SIGTERM: exit at once.
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

const topics = new Map<string, Set<Socket>>();
const MAX_BODY = 1024 * 1024;

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
    if (subs) {
      const frame = textFrame(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      for (const s of subs) s.write(frame);
    }
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
  // The same net.Socket ws writes to: message frames go straight to it.
  const socket = req.socket;
  const mine = new Set<string>();
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString();
    if (!text.startsWith('sub ')) return void ws.close(1008, 'only "sub <topic>"');
    const topic = text.slice(4);
    let subs = topics.get(topic);
    if (!subs) topics.set(topic, (subs = new Set()));
    subs.add(socket);
    mine.add(topic);
    ws.send(`ok ${topic}`);
  });
  ws.on('close', () => {
    for (const t of mine) {
      const subs = topics.get(t);
      subs?.delete(socket);
      if (subs?.size === 0) topics.delete(t);
    }
  });
  ws.on('error', () => ws.terminate());
});

server.listen(port, values.host, () => process.stderr.write(`ws-frame-once listening on ${values.host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
