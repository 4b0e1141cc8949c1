import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';

// ws ships its frame parser but @types/ws does not declare it.
const { Receiver } = wsModule as unknown as {
  Receiver: new (o: { isServer: boolean }) => NodeJS.EventEmitter & { write(b: Buffer): void };
};
import { encodeMessage, messageFrame, wsFrame } from '../../src/gateway/frames.ts';

/** Parses server frames with ws's own receiver, as a client would. */
function parse(frame: Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const r = new Receiver({ isServer: false });
    r.on('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
    r.on('error', reject);
    r.write(frame);
  });
}

describe('frames', () => {
  it('builds valid frames for every length class', async () => {
    for (const n of [0, 1, 125, 126, 65535, 65536, 300_000]) {
      const payload = Buffer.alloc(n, 0x61);
      const got = await parse(wsFrame(1, payload));
      expect(got.data.length).toBe(n);
      expect(got.isBinary).toBe(false);
    }
  });

  it('encodes JSON, text and binary messages', async () => {
    const base = { topic: 'a.b', offset: 7, ts: 1000 };
    const json = await parse(messageFrame({ ...base, kind: 'json', payload: Buffer.from('{"x":[1,"é"]}') }).frame);
    expect(JSON.parse(json.data.toString())).toEqual({ type: 'message', topic: 'a.b', offset: 7, ts: 1000, data: { x: [1, 'é'] } });
    const text = await parse(messageFrame({ ...base, kind: 'text', payload: Buffer.from('he said "hi"\n') }).frame);
    expect(JSON.parse(text.data.toString())).toMatchObject({ data: 'he said "hi"\n' });
    const raw = Buffer.from([0, 1, 2, 255]);
    const bin = encodeMessage({ ...base, kind: 'binary', payload: raw });
    const parsed = await parse(wsFrame(bin.opcode, bin.payload));
    expect(parsed.isBinary).toBe(true);
    const n = parsed.data.readUInt32BE(0);
    expect(JSON.parse(parsed.data.subarray(4, 4 + n).toString())).toEqual({ type: 'message', topic: 'a.b', offset: 7, ts: 1000 });
    expect(parsed.data.subarray(4 + n)).toEqual(raw);
  });
});
