import type { PayloadKind } from '../store/store.ts';
import type { ControlEnvelope, ControlMessage, Publication } from './broker.ts';

/**
 * What the cluster brokers put on the wire.
 *
 * A publication travels as one binary envelope, built once per publish: a fixed header, the topic
 * (ASCII), the epoch (UTF-8), then the payload bytes as they are (never re-encoded):
 *
 *   0      u8    magic: FULL (payload follows) or POSITION (no payload: the receiver reads History)
 *   1      u8    kind: 0 json, 1 text, 2 binary
 *   2..9   f64   offset (big-endian; offsets are safe integers)
 *   10..17 f64   ts
 *   18     u8    topic length (≤ 200 bytes)
 *   19..20 u16   epoch length
 *   21…          topic, epoch, payload
 *
 * Control messages are JSON text (`{"from":…,"msg":…}`), which starts with `{` and so is never
 * mistaken for an envelope. A receiver that cannot decode a message drops it (it is not ours).
 */

const FULL = 0xb1;
const POSITION = 0xb2;
const HEADER = 21;
const KINDS: readonly PayloadKind[] = ['json', 'text', 'binary'];
const KIND_CODE: Record<PayloadKind, number> = { json: 0, text: 1, binary: 2 };

/** A decoded envelope: a whole publication, or only its position (`payload` undefined). */
export interface Received {
  topic: string;
  offset: number;
  epoch: string;
  ts: number;
  kind: PayloadKind;
  payload: Buffer | undefined;
}

/** Bytes of the envelope of `pub` with its payload (to decide on a position-only send). */
export function envelopeSize(pub: Publication): number {
  return HEADER + pub.topic.length + Buffer.byteLength(pub.epoch) + pub.payload.length;
}

/** The envelope of `pub`; `withPayload: false` sends only its position. */
export function encodePublication(pub: Publication, withPayload = true): Buffer {
  const epochLen = Buffer.byteLength(pub.epoch);
  const topicLen = pub.topic.length;
  const start = HEADER + topicLen + epochLen;
  const buf = Buffer.allocUnsafe(withPayload ? start + pub.payload.length : start);
  buf[0] = withPayload ? FULL : POSITION;
  buf[1] = KIND_CODE[pub.kind];
  buf.writeDoubleBE(pub.offset, 2);
  buf.writeDoubleBE(pub.ts, 10);
  buf[18] = topicLen;
  buf.writeUInt16BE(epochLen, 19);
  buf.write(pub.topic, HEADER, topicLen, 'latin1');
  buf.write(pub.epoch, HEADER + topicLen, epochLen, 'utf8');
  if (withPayload) pub.payload.copy(buf, start);
  return buf;
}

/** Is this a publication envelope (rather than a control message)? */
export function isEnvelope(buf: Uint8Array): boolean {
  return buf[0] === FULL || buf[0] === POSITION;
}

/**
 * Decodes an envelope; throws on anything malformed. The payload is copied out: the input is often
 * a view of a larger socket chunk that a long-lived payload should not keep alive.
 */
export function decodePublication(buf: Uint8Array): Received {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < HEADER || !isEnvelope(b)) throw new Error('not a publication envelope');
  const kind = KINDS[b[1]!];
  const topicLen = b[18]!;
  const epochLen = b.readUInt16BE(19);
  const start = HEADER + topicLen + epochLen;
  if (kind === undefined || b.length < start || topicLen === 0) throw new Error('malformed publication envelope');
  return {
    topic: b.toString('latin1', HEADER, HEADER + topicLen),
    offset: b.readDoubleBE(2),
    epoch: b.toString('utf8', HEADER + topicLen, start),
    ts: b.readDoubleBE(10),
    kind,
    payload: b[0] === FULL ? Buffer.from(b.subarray(start)) : undefined,
  };
}

/** A control message as JSON text; `to` is added only where one channel carries every node's. */
export function encodeControl(from: string, msg: ControlMessage, to?: string): string {
  return JSON.stringify(to === undefined ? { from, msg } : { from, to, msg });
}

/** Parses a control message; throws when it is not one. */
export function decodeControl(text: string): ControlEnvelope & { to?: string } {
  const v = JSON.parse(text) as { from?: unknown; to?: unknown; msg?: { op?: unknown } };
  if (typeof v?.from !== 'string' || typeof v.msg?.op !== 'string' || (v.to !== undefined && typeof v.to !== 'string'))
    throw new Error('malformed control message');
  return v as ControlEnvelope & { to?: string };
}

/**
 * A node id as one channel/subject token ([A-Za-z0-9_-], base64url), prefixed with `n` so that no
 * node id can collide with the broadcast token of a broker.
 */
export function nodeToken(nodeId: string): string {
  return 'n' + Buffer.from(nodeId, 'utf8').toString('base64url');
}

/**
 * Drops the second copy of a publication that arrived through two overlapping interests (a topic and
 * a pattern covering it, or two patterns): the server sends such copies back to back. Positions drop
 * any rarer duplicate by offset.
 */
export class EchoFilter {
  #topic = '';
  #offset = -1;
  #epoch = '';

  /** True when `r` is the same publication as the one accepted just before. */
  repeat(r: Received): boolean {
    if (r.offset === this.#offset && r.topic === this.#topic && r.epoch === this.#epoch) return true;
    this.#topic = r.topic;
    this.#offset = r.offset;
    this.#epoch = r.epoch;
    return false;
  }
}

/** Hands a decoded envelope to the node: the whole publication, or only its position. */
export function deliver(r: Received, h: { publication(p: Publication): void; position(t: string, o: number, e: string): void }): void {
  if (r.payload === undefined) h.position(r.topic, r.offset, r.epoch);
  else h.publication(r as Publication);
}
