import type { Publication } from '../broker/broker.ts';
import { ERRORS, type ErrorCode } from '../core/errors.ts';
import type { StoredMessage } from '../store/store.ts';
import { encodeBinaryMessage } from '../../packages/client/src/protocol.ts';

export { isValidId, MAX_ID_LENGTH } from '../../packages/client/src/protocol.ts';

/**
 * Wire frames. Message frames are built once per publication as complete, unmasked WebSocket frames
 * (header + payload in one buffer) and the same bytes are written to every subscriber.
 */

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;

/** A complete server-to-client WebSocket frame (FIN set, unmasked). */
export function wsFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const buf = Buffer.allocUnsafe(hlen + len);
  buf[0] = 0x80 | opcode;
  if (len < 126) {
    buf[1] = len;
  } else if (len < 65536) {
    buf[1] = 126;
    buf.writeUInt16BE(len, 2);
  } else {
    buf[1] = 127;
    buf.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    buf.writeUInt32BE(len >>> 0, 6);
  }
  payload.copy(buf, hlen);
  return buf;
}

type MessageLike = Pick<Publication, 'topic' | 'offset' | 'ts' | 'kind' | 'payload'> | StoredMessage;

/**
 * The payload of a message frame: JSON text `{"type":"message","topic","offset","ts","data"}`, or for
 * binary payloads: 4-byte big-endian header length, the JSON header, the raw bytes.
 */
export function encodeMessage(m: MessageLike): { opcode: number; payload: Buffer } {
  const head = `{"type":"message","topic":${JSON.stringify(m.topic)},"offset":${m.offset},"ts":${m.ts}`;
  if (m.kind === 'binary') {
    const out = encodeBinaryMessage(head + '}', m.payload);
    return { opcode: OP_BINARY, payload: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
  }
  const data = m.kind === 'json' ? m.payload.toString('utf8') : JSON.stringify(m.payload.toString('utf8'));
  return { opcode: OP_TEXT, payload: Buffer.from(`${head},"data":${data}}`) };
}

/** A message ready for any subscriber: the complete frame, and its payload for compressing peers. */
export interface OutMessage {
  frame: Buffer;
  payload: Buffer;
  binary: boolean;
}

export function messageFrame(m: MessageLike): OutMessage {
  const { opcode, payload } = encodeMessage(m);
  return { frame: wsFrame(opcode, payload), payload, binary: opcode === OP_BINARY };
}

/** An `error` frame; `id` is echoed when the request carried one, `fields` (e.g. `topic`) are added. */
export function errorFrame(code: ErrorCode, message?: string, id?: unknown, fields?: Record<string, unknown>): string {
  const f: Record<string, unknown> = { type: 'error', code, message: message ?? ERRORS[code].message, ...fields };
  if (id !== undefined) f.id = id;
  return JSON.stringify(f);
}

/** A JSON control frame; `id` is echoed when the request carried one. */
export function controlFrame(type: string, fields: Record<string, unknown>, id?: unknown): string {
  const f: Record<string, unknown> = { type, ...fields };
  if (id !== undefined) f.id = id;
  return JSON.stringify(f);
}
