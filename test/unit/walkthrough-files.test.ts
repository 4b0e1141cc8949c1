import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README walkthrough writes a script (and the position it saves) into the repository folder,
 * where it must stay for `import 'ws'` to resolve. `npm test` starts with `eslint .` and
 * `prettier --check .`: they must skip those files, and git must not show them.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The script the walkthrough writes (`cat > PATH <<'EOF' … EOF`) and the file it saves its position in. */
function walkthroughFiles(): { script: string; content: string; saved: string } {
  const m = /cat > (\S+) <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(README);
  if (!m) throw new Error("README.md: no `cat > FILE <<'EOF'` block found");
  const script = join(ROOT, m[1]!);
  const content = m[2]! + '\n';
  const s = /const SAVED = (?:'([^']+)'|new URL\('([^']+)', import\.meta\.url\))/.exec(content);
  if (!s) throw new Error('the walkthrough script has no `const SAVED = …` line');
  const saved = s[1] !== undefined ? join(ROOT, s[1]) : fileURLToPath(new URL(s[2]!, pathToFileURL(script)));
  return { script, content, saved };
}

const bin = (name: string): string => join(ROOT, 'node_modules/.bin', name);

describe('the README walkthrough leaves `npm test` green', () => {
  it('its script and position file are skipped by eslint, prettier and git', () => {
    const { script, content, saved } = walkthroughFiles();
    const created = [script, saved].filter((f) => !existsSync(f));
    const folders = [...new Set([dirname(script), dirname(saved)])].filter((d) => !existsSync(d));
    try {
      for (const d of folders) mkdirSync(d, { recursive: true });
      if (created.includes(script)) writeFileSync(script, content);
      if (created.includes(saved)) writeFileSync(saved, JSON.stringify({ offset: 4, epoch: 'ZWQ-s-oVPfmQ' }));
      const files = [script, saved].map((f) => relative(ROOT, f));

      // What `npm run lint` runs, on exactly these files: an ignored file passes quietly.
      const eslint = spawnSync(bin('eslint'), ['--no-warn-ignored', '--max-warnings', '0', ...files], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(eslint.status, `eslint: ${eslint.stdout}${eslint.stderr}`).toBe(0);
      const prettier = spawnSync(bin('prettier'), ['--check', ...files], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(prettier.status, `prettier: ${prettier.stdout}${prettier.stderr}`).toBe(0);
      // `git check-ignore` prints the ignored ones.
      const ignored = execFileSync('git', ['check-ignore', '--no-index', ...files], { cwd: ROOT, encoding: 'utf8' })
        .trim()
        .split('\n');
      expect(ignored).toEqual(files);
    } finally {
      for (const f of created) rmSync(f, { force: true });
      for (const d of folders.reverse()) rmSync(d, { recursive: true, force: true });
    }
  });
});
