import { errors, jsonBody, jsonResponse, ref, type ApiPart } from './common.ts';

/**
 * POST /entities: many JSON messages in one request and one store commit (issue 13), as the
 * batch-ingest work documents it (docs/http-api.md#post-entities). Kept apart so that it can be
 * adjusted to the implementation when the branches meet. Access is that of POST /entity.
 */
export const batchApi: ApiPart = {
  schemas: {
    EntityBatch: {
      type: 'object',
      required: ['messages'],
      properties: {
        messages: {
          type: 'array',
          minItems: 1,
          description:
            '1 to `limits.maxBatchMessages` (default 1000) messages; the body at most `limits.maxBatchBytes` (default 4 MiB). ' +
            'An item that is not a valid message is refused on its own, in its result.',
          items: {
            type: 'object',
            description: 'Exactly the body of POST /entity (an item that is not an object is refused on its own: `bad_request`).',
            properties: {
              topic: { type: 'string', description: 'A topic (wildcards are not topics).' },
              data: { description: 'Any JSON value, delivered as JSON; at most `limits.maxMessageBytes` re-serialized.' },
              id: { type: 'string', description: 'Idempotency key (1–200 characters), shared with POST /entity.' },
            },
          },
        },
      },
    },
    EntityBatchResult: {
      type: 'object',
      required: ['results'],
      additionalProperties: false,
      properties: {
        results: {
          type: 'array',
          description: 'One per message, in the order of `messages`.',
          items: {
            oneOf: [
              {
                type: 'object',
                description: 'A stored message, or (`duplicate`) a repeat of one stored earlier with the same `id`: not stored again.',
                required: ['topic', 'offset', 'id'],
                additionalProperties: false,
                properties: {
                  topic: ref('Topic'),
                  offset: { type: 'integer', minimum: 1 },
                  id: { type: 'string' },
                  duplicate: { type: 'boolean', const: true },
                },
              },
              {
                $ref: '#/components/schemas/Error',
                description:
                  'A refused message (not stored; the others are): `bad_request` (not an object, no `data`, a bad `id`), `invalid_topic`, ' +
                  '`payload_too_large` (`data` over `limits.maxMessageBytes`), `idempotency_key_conflict`.',
              },
            ],
          },
        },
      },
    },
  },
  paths: {
    '/entities': {
      post: {
        tags: ['ingest'],
        operationId: 'publishBatch',
        summary: 'Publish many JSON messages in one request and one commit',
        description:
          'From an address in `ingest.allow`, with an ingest key, `Content-Type: application/json` (or `application/*+json`). Every accepted message is committed ' +
          'in one transaction; the messages of one topic get consecutive offsets in array order. 200, not 202: read each result. ' +
          'To retry a batch, send it again unchanged (messages with an `id` come back as `duplicate`). An `Idempotency-Key` header is refused.',
        security: [{ ingestKey: [] }],
        requestBody: jsonBody(ref('EntityBatch'), {
          messages: [
            { topic: 'orders.eu', data: { order: 42, status: 'paid' }, id: 'order-42-paid' },
            { topic: 'orders.*', data: { order: 44 } },
            { topic: 'orders.us', data: { order: 45, status: 'paid' } },
          ],
        }),
        responses: {
          '200': jsonResponse('Every message’s result, in order, once the accepted ones are committed.', ref('EntityBatchResult'), {
            results: [
              { topic: 'orders.eu', offset: 7, id: 'order-42-paid' },
              { error: { code: 'invalid_topic', message: 'invalid topic or pattern' } },
              { topic: 'orders.us', offset: 3, id: 'm_kq3J0xQ2dPc1hY7s' },
            ],
          }),
          ...errors({
            bad_request: 'the body is not `{"messages":[…]}`; `messages` is empty; an `Idempotency-Key` header',
            invalid_json: 'the body is not valid JSON, or nests deeper than `limits.maxJsonDepth` + 3',
            invalid_key: 'no, unknown or revoked ingest key',
            ip_not_allowed: 'the source address is not in `ingest.allow`',
            payload_too_large: 'more than `limits.maxBatchMessages` messages, or a body over `limits.maxBatchBytes`',
            unsupported_media_type: 'a content type other than `application/json` / `application/*+json`',
            rate_limited: 'this address spent its budget of failed key checks (`limits.ingestAuthFailures`); wait `Retry-After`',
            unavailable: 'the store failed: nothing of the batch was stored; retry the same batch (same `id`s) after `Retry-After`',
          }),
        },
      },
    },
  },
};
