import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportCached, exportKey } from './export-cache.js';

beforeAll(async () => {
  await initBackend();
});

describe('export cache', () => {
  it('the key changes with any weight byte, the exporter version or the options, and only then', () => {
    const w = new Float32Array([1, 2, 3]);
    const base = exportKey('1', [['w', w]], { quantize: 'int4' });
    expect(exportKey('1', [['w', new Float32Array([1, 2, 3])]], { quantize: 'int4' })).toBe(base);
    expect(exportKey('1', [['w', new Float32Array([1, 2, 3.0001])]], { quantize: 'int4' })).not.toBe(base);
    expect(exportKey('2', [['w', w]], { quantize: 'int4' })).not.toBe(base);
    expect(exportKey('1', [['w', w]], { quantize: 'int8' })).not.toBe(base);
    // A tfjs tensor hashes like its values.
    const t = tf.tensor1d([1, 2, 3]);
    expect(exportKey('1', [['w', t]], { quantize: 'int4' })).toBe(base);
    t.dispose();
  });

  it('builds a folder once, reuses it, and leaves nothing behind when a build fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-cache-'));
    let builds = 0;
    const build = (folder: string) => {
      builds++;
      writeFileSync(join(folder, 'model.onnx'), 'x');
    };
    const first = await exportCached(dir, 'abc', build);
    const second = await exportCached(dir, 'abc', build);
    expect(second).toBe(first);
    expect(builds).toBe(1);
    expect(readFileSync(join(first, 'model.onnx'), 'utf8')).toBe('x');
    await expect(exportCached(dir, 'bad', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(readdirSync(dir).sort()).toEqual(['abc']);
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });
});
