import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { readHfConfig } from './hf-config.js';

const dir = mkdtempSync(join(tmpdir(), 'bvllm-hf-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readHfConfig', () => {
  it('reads a fixture config.json as a plain object', () => {
    const config = readHfConfig(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url).pathname);
    expect(config).toMatchObject({ model_type: 'qwen2', hidden_size: 64, num_key_value_heads: 2, tie_word_embeddings: false });
  });

  it('throws ConfigError naming the file when it is missing, not JSON, or not an object', () => {
    expect(() => readHfConfig(join(dir, 'absent'))).toThrow(ConfigError);
    writeFileSync(join(dir, 'config.json'), '{"a":');
    expect(() => readHfConfig(dir)).toThrow(`${join(dir, 'config.json')}: not a valid config`);
    writeFileSync(join(dir, 'array.json'), '[1]');
    expect(() => readHfConfig(dir, 'array.json')).toThrow('not a JSON object');
  });
});
