import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';

const dir = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

describe('examples/ are valid configs', () => {
  it('has an example per connector type', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  it.each(files)('%s validates', (f) => {
    const config = loadConfig({ file: dir + f, env: {} });
    expect(config.connectors.length).toBeGreaterThan(0);
  });
});
