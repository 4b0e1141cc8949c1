import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from '../../src/config/load.ts';
import { tempDir } from '../helpers/server.ts';

/** examples/hubcast.service must keep running Hubcast as one process that gets the signals. */

const FILE = fileURLToPath(new URL('../../examples/hubcast.service', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `Key=value` lines of the [Service] section (comments and other sections left out). */
function service(): Map<string, string> {
  const text = readFileSync(FILE, 'utf8');
  const section = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  return new Map(
    section
      .split('\n')
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );
}

describe('examples/hubcast.service', () => {
  it('runs node on bin/hubcast.js directly (not npm), so that systemd’s main process is Hubcast', () => {
    const s = service();
    expect(s.get('Type')).toBe('simple');
    const [node, entry, cmd] = s.get('ExecStart')!.split(' ');
    expect(node).toMatch(/\/node$/);
    expect(existsSync(join(ROOT, entry!)), entry).toBe(true);
    expect(cmd).toBe('start');
    expect(s.get('User')).toBeTruthy();
    expect(s.get('WorkingDirectory')).toBeTruthy();
    expect(s.get('Restart')).toBe('on-failure');
  });

  it('stops with SIGTERM, waits longer than shutdown.graceS, and reloads with SIGHUP to the main pid', () => {
    const s = service();
    const graceS = CONFIG_KEYS.find((k) => k.path === 'shutdown.graceS')!.default as number;
    expect(s.get('KillSignal')).toBe('SIGTERM');
    expect(Number(s.get('TimeoutStopSec'))).toBeGreaterThan(graceS);
    expect(s.get('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('passes systemd-analyze verify', () => {
    const copy = join(tempDir(), 'hubcast.service');
    copyFileSync(FILE, copy);
    // It reports what it cannot parse on stderr and still exits 0.
    const r = spawnSync('/usr/bin/systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr + r.stdout).toBe('');
  });
});
