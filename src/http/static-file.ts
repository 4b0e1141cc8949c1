import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';

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

/** A file read once into memory and served with a strong ETag. */
export interface StaticFile {
  body: Buffer;
  etag: string;
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
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
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
  void reply.header('ETag', file.etag).header('Cache-Control', cacheControl).header('X-Content-Type-Options', 'nosniff');
  if (notModified(req, file.etag)) return reply.code(304).send();
  return reply.code(200).header('Content-Type', file.contentType).send(file.body);
}
