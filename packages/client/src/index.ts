/**
 * `@hubcast/client`: the Hubcast consumer SDK for browsers and Node.
 *
 * ```ts
 * import { Hubcast } from '@hubcast/client';
 * const hub = new Hubcast({ url: 'http://localhost:8080', token });
 * const sub = hub.subscribe('orders.eu');
 * for await (const m of sub) console.log(m.offset, m.data);
 * ```
 *
 * @module
 */
export { Hubcast } from './hubcast.ts';
export type {
  Ack,
  AuthForm,
  HubcastEvents,
  HubcastOptions,
  PublishOptions,
  State,
  StateInfo,
  WebSocketClass,
  WebSocketLike,
} from './hubcast.ts';
export { Subscription } from './subscription.ts';
export type { GapInfo, Message, SubscribedInfo, SubscribeOptions, SubscriptionEvents } from './subscription.ts';
export { HubcastError } from './errors.ts';
export { localStorageStorage, memoryStorage } from './storage.ts';
export type { PositionStorage } from './storage.ts';
export { closeAction, decodeBinaryMessage, REFUSAL_CLOSE, SUBPROTOCOL } from './protocol.ts';
export type { ClientFrame, CloseAction, ServerFrame } from './protocol.ts';
export type { Position } from './protocol.ts';
