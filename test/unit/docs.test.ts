import { readFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { DOC, render } from '../../scripts/config-docs.ts';
import { CONFIG_KEYS } from '../../src/config/load.ts';
import { ERRORS } from '../../src/core/errors.ts';
import { CloseCode } from '../../src/gateway/gateway.ts';

/** The reference docs must name every error code, config key and close code the code defines. */

const doc = (name: string): string => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

/** Names in `items` that `text` does not contain in the form `show(name)`. */
function missing(items: readonly string[], text: string, show: (item: string) => string): string[] {
  return items.filter((item) => !text.includes(show(item)));
}

describe('reference docs', () => {
  it('docs/errors.md lists every error code of ERRORS', () => {
    expect(missing(Object.keys(ERRORS), doc('errors.md'), (code) => `\`${code}\``)).toEqual([]);
  });

  it('docs/configuration.md lists every config key with its environment variable and flag', () => {
    const text = doc('configuration.md');
    expect(
      missing(
        CONFIG_KEYS.map((k) => k.path),
        text,
        (path) => `\`${path}\``,
      ),
    ).toEqual([]);
    expect(
      missing(
        CONFIG_KEYS.map((k) => k.env),
        text,
        (env) => `\`${env}\``,
      ),
    ).toEqual([]);
    expect(
      missing(
        CONFIG_KEYS.map((k) => k.flag),
        text,
        (flag) => `\`${flag}\``,
      ),
    ).toEqual([]);
  });

  it('the key table of docs/configuration.md is what `npm run docs:config` generates', async () => {
    const current = readFileSync(DOC, 'utf8');
    const options = { ...(await resolveConfig(DOC)), filepath: DOC };
    expect(await format(render(current), options), 'run `npm run docs:config`').toBe(current);
  });

  it('docs/websocket.md lists every close code of CloseCode in its close-code table', () => {
    const text = doc('websocket.md');
    const codes = Object.values(CloseCode).map(String);
    expect(missing(codes, text, (code) => `| ${code} `)).toEqual([]);
  });
});
