/**
 * BENCH CONTENDER: Socket.IO 4 room broadcast — websocket transport only, permessage-deflate and
 * HTTP compression off, the default in-memory adapter.
 *
 *   node --import tsx bench/contenders/socketio.ts --port N
 *
 * Socket.IO on `/socket.io/` (EIO=4, transport=websocket): the event `sub` with a list of topics joins
 * those rooms and acknowledges. HTTP on the same port: `POST /publish?topic=<topic>` (body = the
 * message) → `io.to(topic).emit('m', body)` → 204; `GET /healthz` → 200. SIGTERM: exit at once.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('--port N is required\n');
  process.exit(2);
}

const MAX_BODY = 1024 * 1024;

const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

io.on('connection', (socket) => {
  socket.on('sub', (topics: unknown, ack: unknown) => {
    if (!Array.isArray(topics) || !topics.every((t) => typeof t === 'string')) return void socket.disconnect(true);
    void socket.join(topics as string[]);
    if (typeof ack === 'function') (ack as (ok: string) => void)('ok');
  });
});

// Socket.IO answers its own path; every other request comes here.
http.on('request', (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname.startsWith('/socket.io/')) return;
  if (req.method === 'GET' && url.pathname === '/healthz') return void res.writeHead(200, { 'content-length': 2 }).end('ok');
  if (req.method !== 'POST' || url.pathname !== '/publish') return void res.writeHead(404, { 'content-length': 0 }).end();
  const topic = url.searchParams.get('topic') ?? '';
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return void res.writeHead(413, { 'content-length': 0 }).end();
    io.to(topic).emit('m', Buffer.concat(chunks).toString('utf8'));
    res.writeHead(204).end();
  });
});
http.keepAliveTimeout = 120_000;

http.listen(port, values.host, () => process.stderr.write(`socketio listening on ${values.host}:${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
