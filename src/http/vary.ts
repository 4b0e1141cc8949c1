import type { FastifyReply } from 'fastify';

/** Adds `field` to the answer's `Vary` header (several parts of an answer may each vary it). */
export function vary(reply: FastifyReply, field: string): void {
  const current = reply.getHeader('vary');
  const fields = typeof current === 'string' && current !== '' ? current.split(',').map((f) => f.trim()) : [];
  if (!fields.some((f) => f.toLowerCase() === field.toLowerCase())) fields.push(field);
  void reply.header('Vary', fields.join(', '));
}
