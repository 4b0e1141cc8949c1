import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, tempDir, type Harness } from '../helpers/server.ts';

/**
 * The README walkthrough, run as written: its `sh` blocks in order, in bash with job control (as in a
 * terminal, `kill %1` signals the background consumer's process group), against a real server. Only
 * the address changes: `localhost:8080` in curl commands, and HUBCAST_HOST / HUBCAST_PORT for the CLI's
 * default URL. Between blocks the script waits the way a reader does: for a consumer it started to be
 * subscribed, else until the output is quiet for a moment.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

function walkthroughBlocks(): string[] {
  const start = README.indexOf('\n## Walkthrough\n');
  const end = README.indexOf('\n## ', start + 1);
  if (start < 0 || end < 0) throw new Error('README.md: no "## Walkthrough" section');
  return [...README.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const gitStatus = () => execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT, encoding: 'utf8' });

describe('the README walkthrough', { timeout: 180_000 }, () => {
  let h: Harness | undefined;
  const scratch = tempDir('hubcast-walkthrough-');
  afterAll(async () => {
    await h?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('runs as written: each step prints what the README says, and leaves nothing in the repository', async () => {
    const port = await freePort();
    h = await startServer({ port });
    const blocks = walkthroughBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(7);
    const out = join(scratch, 'out.txt');
    const lines = [
      `exec >>'${out}' 2>&1`, // both streams in one file, interleaved as in a terminal
      'set -m',
      // Stopped by the test's timeout: take the background consumers (each its own process group) along.
      `trap 'for p in $(jobs -p); do kill -- -$p; done 2>/dev/null; exit 1' TERM`,
      // Bounded waits: for the n-th "subscribed" line, or for 1 s without new output.
      `subscribed() { for i in $(seq 150); do [ "$(grep -c ': subscribed,' '${out}')" -ge "$1" ] && return; sleep 0.1; done; echo "TIMEOUT waiting for subscribed #$1"; }`,
      `quiet() { local last=-1 now; for i in $(seq 150); do now=$(wc -c < '${out}'); [ "$now" = "$last" ] && return; last=$now; sleep 1; done; }`,
    ];
    let subs = 0;
    for (const [i, block] of blocks.entries()) {
      lines.push(`echo "=== block ${i + 1}"`, block.replaceAll('localhost:8080', `127.0.0.1:${port}`));
      subs += (block.match(/ sub .*&\s*$/gm) ?? []).length;
      lines.push(/ sub .*&\s*$/m.test(block) ? `subscribed ${subs}` : 'quiet');
    }
    lines.push('wait', 'echo "=== done"');
    const script = join(scratch, 'walkthrough.sh');
    writeFileSync(script, lines.join('\n') + '\n');
    writeFileSync(out, '');

    const before = gitStatus();
    const env: Record<string, string | undefined> = {
      ...process.env,
      HUBCAST_DATA_DIR: h.dataDir,
      HUBCAST_HOST: '127.0.0.1',
      HUBCAST_PORT: String(port),
      TMPDIR: scratch,
    };
    delete env.HUBCAST_KEY;
    // Bounded: a walkthrough that hangs is killed (its background jobs are in its process group).
    await new Promise<void>((resolve) => {
      const child = spawn('bash', [script], { cwd: ROOT, env, stdio: 'ignore', detached: true });
      const timer = setTimeout(() => process.kill(child.pid!, 'SIGTERM'), 150_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('=== done');
    expect(text).not.toContain('TIMEOUT');

    // 1–2: a client and a token.
    expect(text).toMatch(/"client_id":"c_[^"]+","client_secret"/);
    expect(text).toMatch(/"token":"[^"]{43}","token_type":"Bearer"/);
    // 3–4: the consumer prints each kind of payload.
    expect(text).toContain(`hubcast sub: connected to http://127.0.0.1:${port}`);
    expect(text).toMatch(/orders\.eu: subscribed, latest offset 0, epoch \S+; live from here/);
    expect(text).toMatch(/\{"topic":"orders\.eu","offset":1,"ts":\d+,"data":\{"order":42,"status":"paid"\}\}/);
    expect(text).toMatch(/\{"topic":"orders\.eu","offset":2,"ts":\d+,"data":"order 42 packed"\}/);
    expect(text).toMatch(/\{"topic":"orders\.eu","offset":3,"ts":\d+,"base64":"UkFX"\}/);
    // 5: retries answered with the first offsets.
    expect(text.match(/\{"topic":"orders\.eu","offset":5,"id":"order-42-shipped"\}/g)).toHaveLength(2);
    expect(text.match(/\{"topic":"orders\.eu","offset":6,"id":"import-1-1"\}/g)).toHaveLength(2);
    expect(text.match(/\{"topic":"orders\.eu","offset":7,"id":"import-1-2"\}/g)).toHaveLength(2);
    // 6: the position file, and the replay of what was missed.
    expect(text).toMatch(/\{"orders\.eu":\{"offset":7,"epoch":"[^"]+"\}\}/);
    expect(text).toMatch(/orders\.eu: subscribed, latest offset 9, epoch \S+; resuming after offset 7 \(recovered\)/);
    // Every message printed by a consumer exactly once, in order, across both runs.
    const delivered = [...text.matchAll(/\{"topic":"orders\.eu","offset":(\d+),"ts":/g)].map((m) => Number(m[1]));
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 7: revoked: the consumer stops with status 1, the token is refused.
    expect(text).toContain('revoked c_');
    expect(text).toContain('{"error":{"code":"unauthorized","message":"missing, invalid or expired credentials"}}');
    expect(text).toContain('hubcast sub: stopped: closed with 4500 (revoked): client revoked');
    // Nothing written into the repository (npm test's lint and format checks stay green).
    expect(gitStatus()).toBe(before);
  });
});
