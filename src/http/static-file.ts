import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { vary } from './vary.ts';

/**
 * The folder of Hubcast's own package.json, found by walking up from this module: the same answer
 * whether the server runs from `src/` (tsx) or from a build under `dist/`.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'hubcast') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('hubcast: cannot find the package root (package.json named "hubcast") above ' + import.meta.url);
    dir = up;
  }
}

/**
 * A file read once into memory and served with a strong ETag; also gzipped once, when that makes it
 * smaller, for clients that accept it (its own ETag, as a different representation needs).
 */
export interface StaticFile {
  body: Buffer;
  etag: string;
  gzip?: { body: Buffer; etag: string };
  contentType: string;
}

/** Reads `path` now; `undefined` when it does not exist. */
export function loadStaticFile(path: string, contentType: string): StaticFile | undefined {
  let body: Buffer;
  try {
    body = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return staticFile(body, contentType);
}

/** A body built in memory (GET /openapi.json), served like a file: ETag, and gzip when smaller. */
export function staticFile(body: Buffer, contentType: string): StaticFile {
  const tag = createHash('sha256').update(body).digest('base64url').slice(0, 27);
  const gz = gzipSync(body, { level: 9 });
  return { body, contentType, etag: `"${tag}"`, ...(gz.length < body.length ? { gzip: { body: gz, etag: `"${tag}-gzip"` } } : {}) };
}

/** `Accept-Encoding` names gzip (or `*`) with a non-zero weight. */
function acceptsGzip(req: FastifyRequest): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** True when the request's `If-None-Match` names `etag` (or is `*`); weak comparison, as RFC 9110 §13.1.2 asks. */
function notModified(req: FastifyRequest, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (header === undefined) return false;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

/** Answers with the file: `304` (no body) when the client's copy is current, else `200`. */
export function sendStaticFile(req: FastifyRequest, reply: FastifyReply, file: StaticFile, cacheControl: string): FastifyReply {
  const chosen = file.gzip && acceptsGzip(req) ? file.gzip : undefined;
  const etag = chosen?.etag ?? file.etag;
  void reply.header('ETag', etag).header('Cache-Control', cacheControl).header('X-Content-Type-Options', 'nosniff');
  if (file.gzip) vary(reply, 'Accept-Encoding');
  if (notModified(req, etag)) return reply.code(304).send();
  if (chosen) void reply.header('Content-Encoding', 'gzip');
  return reply
    .code(200)
    .header('Content-Type', file.contentType)
    .send(chosen?.body ?? file.body);
}
