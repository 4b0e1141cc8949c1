import { errorExample, errors, jsonBody, jsonResponse, ref, type ApiPart } from './common.ts';

/**
 * POST /entities: many messages in one request (issue 13), from the contract the batch-ingest work
 * follows. Kept apart so that it can be adjusted to the implementation (its caps, its codes) when the
 * branches meet. Access is that of POST /entity: `ingest.allow` and an ingest key.
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
          description: 'Each one as the body of POST /entity; each is published (or refused) on its own, in order.',
          items: {
            type: 'object',
            description:
              'As the body of POST /entity. A message that is not valid (a bad topic, no `data`) is refused on its own, in its result, with the code POST /entity would give.',
            properties: {
              topic: { type: 'string', description: 'A topic (docs/websocket.md#topics-and-patterns).' },
              data: { description: 'Any JSON value.' },
              id: { type: 'string', description: 'Idempotency key (1–200 characters).' },
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
          description: 'One per message, in the order sent: what POST /entity would have answered for it.',
          items: {
            oneOf: [
              {
                type: 'object',
                required: ['topic', 'offset', 'id'],
                additionalProperties: false,
                properties: {
                  topic: ref('Topic'),
                  offset: { type: 'integer', minimum: 1 },
                  id: { type: 'string' },
                  duplicate: { type: 'boolean', description: 'A repeat of a message already accepted with this idempotency key.' },
                },
              },
              ref('Error'),
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
        summary: 'Publish several JSON messages in one request',
        description:
          'The request as a whole is refused only when it cannot be read (access, body, size); otherwise it is 200 and every message has its own result, ' +
          'a stored message `{"topic","offset","id"}` or a refused one `{"error":{"code","message"}}` with the code POST /entity would have given.',
        security: [{ ingestKey: [] }],
        requestBody: jsonBody(ref('EntityBatch'), {
          messages: [
            { topic: 'orders.eu', data: { order: 42 }, id: 'order-42-paid' },
            { topic: 'orders.us', data: { order: 43 } },
            { topic: 'orders.*', data: 1 },
          ],
        }),
        responses: {
          '200': jsonResponse('Every message’s result, in order.', ref('EntityBatchResult'), {
            results: [
              { topic: 'orders.eu', offset: 7, id: 'order-42-paid' },
              { topic: 'orders.us', offset: 3, id: 'm_Xq8LrT2pW4' },
              errorExample('invalid_topic'),
            ],
          }),
          ...errors({
            bad_request: 'the body is not `{"messages":[…]}`, or holds no message or too many',
            invalid_json: 'the body is not valid JSON, or nests deeper than `limits.maxJsonDepth` + 2',
            invalid_key: 'no, unknown or revoked ingest key',
            ip_not_allowed: 'the source address is not in `ingest.allow`',
            payload_too_large: 'the body exceeds the batch size limit',
            unsupported_media_type: 'a non-JSON content type',
            rate_limited: 'this address spent its budget of failed key checks (`limits.ingestAuthFailures`)',
            unavailable: 'the store failed; retry after `Retry-After` (with ids on the messages, a retry stores none of them twice)',
          }),
        },
      },
    },
  },
};
