import { z } from 'zod';

/**
 * Settings every connector has, whatever its type. Type-specific settings live beside each
 * implementation (`export const settings` in `file.ts`, `postgres.ts`, …) and are merged in index.ts.
 */
export const retrySchema = z
  .object({
    attempts: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('Attempts before alerting source_unreachable (gateway_unreachable for hubcast connect); retrying goes on at maxMs.'),
    initialMs: z.number().int().min(1).default(200).describe('First reconnect delay; doubles per attempt, jittered.'),
    maxMs: z.number().int().min(1).default(30_000).describe('Longest reconnect delay.'),
  })
  .strict()
  .default({});

export const commonConnectorFields = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a connector name is 1–64 characters of [A-Za-z0-9_-]')
    .describe('Unique name: in logs, metrics, alerts, idempotency keys and POST /hooks/<name>.'),
  /** Topic template over the record, e.g. `orders.{{region}}` or `iot.{{$meta.topicDots}}`. */
  topic: z.string().min(1).describe('Topic template over the record, e.g. orders.{{region}}.'),
  /** Ordered pipeline steps (see src/pipeline). Validated and compiled by the pipeline module. */
  pipeline: z.array(z.record(z.unknown())).default([]),
  retry: retrySchema,
  enabled: z.boolean().default(true),
};

export type RetryConfig = z.output<typeof retrySchema>;

export interface CommonConnectorConfig {
  name: string;
  type: string;
  topic: string;
  pipeline: Record<string, unknown>[];
  retry: RetryConfig;
  enabled: boolean;
}
