/**
 * The published payload of the comparison scenarios, the same bytes for every contender: a JSON
 * object of `bytes` bytes (~190) whose first string holds a fixed-width marker
 *
 *   ~S<seq, 10 digits>K<topic index, 5 digits>T<publisher's process.hrtime.bigint(), 20 digits>~
 *
 * Nothing in it needs escaping, so it survives being embedded in any envelope (Hubcast's JSON
 * message, a Socket.IO event string, a NATS MSG, an MQTT PUBLISH) and the load generator finds it
 * with one `indexOf` instead of parsing each delivery.
 */

export const MARK = Buffer.from('~S');
const SEQ_AT = 2;
const TOPIC_AT = 13;
const NS_AT = 19;
/** `~S` + 10 + `K` + 5 + `T` + 20 + `~`. */
export const MARK_LEN = 40;
const PREFIX = '{"s":"';

/** The payload with zeroed fields; `stamp` copies it and fills them in. */
export function template(bytes: number): Buffer {
  const mark = `~S${'0'.repeat(10)}K${'0'.repeat(5)}T${'0'.repeat(20)}~`;
  const head = `${PREFIX}${mark}","p":"`;
  const pad = Math.max(0, bytes - head.length - 2);
  return Buffer.from(`${head}${'x'.repeat(pad)}"}`);
}

function writeDigits(buf: Buffer, at: number, width: number, value: number | bigint): void {
  const s = value.toString();
  if (s.length > width) throw new Error(`${s} does not fit in ${width} digits`);
  buf.write(s.padStart(width, '0'), at, 'latin1');
}

/** A fresh payload for message `seq` of topic `topic`, stamped with `ns` (CLOCK_MONOTONIC). */
export function stamp(tpl: Buffer, seq: number, topic: number, ns: bigint): Buffer {
  const b = Buffer.from(tpl);
  const at = PREFIX.length;
  writeDigits(b, at + SEQ_AT, 10, seq);
  writeDigits(b, at + TOPIC_AT, 5, topic);
  writeDigits(b, at + NS_AT, 20, ns);
  return b;
}

function digits(buf: Buffer, at: number, width: number): number {
  let v = 0;
  for (let i = at, end = at + width; i < end; i++) v = v * 10 + (buf[i]! - 48);
  return v;
}

/** Position of the marker within `buf[start, end)`, or -1. */
export function findMark(buf: Buffer, start: number, end: number): number {
  const i = buf.indexOf(MARK, start);
  return i === -1 || i + MARK_LEN > end ? -1 : i;
}

export const seqAt = (buf: Buffer, mark: number) => digits(buf, mark + SEQ_AT, 10);
export const topicAt = (buf: Buffer, mark: number) => digits(buf, mark + TOPIC_AT, 5);
/** The publisher's stamp, ns (exact while below 2^53 ns, i.e. ~104 days of uptime). */
export const nsAt = (buf: Buffer, mark: number) => digits(buf, mark + NS_AT, 20);
