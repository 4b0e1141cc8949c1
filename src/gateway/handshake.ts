import type { IncomingMessage } from 'node:http';

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** An RFC 7230 token: what a subprotocol name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface HandshakeFault {
  message: string;
  headers?: Record<string, string>;
}

/**
 * Checks the WebSocket handshake's shape, so that ws (which would answer with its own plain-text
 * body) never finds anything to refuse: returns what is wrong, or undefined. Nothing is looked up.
 */
export function checkHandshake(req: IncomingMessage): HandshakeFault | undefined {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
    return { message: 'expected a WebSocket upgrade (GET with Upgrade: websocket)' };
  }
  if (!WS_KEY.test(req.headers['sec-websocket-key'] ?? '')) return { message: 'missing or invalid Sec-WebSocket-Key' };
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return { message: 'unsupported Sec-WebSocket-Version', headers: { 'Sec-WebSocket-Version': '13, 8' } };
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined && !validProtocols(protocols)) {
    return { message: 'malformed Sec-WebSocket-Protocol: a comma-separated list of distinct tokens' };
  }
  return undefined;
}

/** The same grammar ws accepts: tokens separated by commas with optional spaces between, no duplicate. */
function validProtocols(header: string): boolean {
  if (header !== header.trim()) return false;
  const names = header.split(',').map((p) => p.replace(/^[ \t]+|[ \t]+$/g, ''));
  return names.every((p) => TOKEN.test(p)) && new Set(names).size === names.length;
}
