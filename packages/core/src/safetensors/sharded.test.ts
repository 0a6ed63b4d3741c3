import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { SafetensorsFormatError } from '../errors.js';
import { tensorGrowth } from '../memory.js';
import { TensorSource } from './sharded.js';
import { writeSafetensors } from './write.js';

let root: string;

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-sharded-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A Hugging Face style sharded folder: two shards and `model.safetensors.index.json`. */
function shardedFolder(name: string, weightMap: Record<string, string> | string): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const shard1 = 'model-00001-of-00002.safetensors';
  const shard2 = 'model-00002-of-00002.safetensors';
  writeSafetensors(join(dir, shard1), new Map([['embed.weight', { values: [1, 2, 3, 4], shape: [2, 2] }]]));
  writeSafetensors(
    join(dir, shard2),
    new Map([
      ['layer.0.weight', { values: [5, 6], shape: [1, 2] }],
      ['ids', { values: Int32Array.of(7, 8, 9), shape: [3] }],
    ]),
  );
  const index =
    typeof weightMap === 'string' ? weightMap : JSON.stringify({ metadata: { total_size: 36 }, weight_map: weightMap });
  writeFileSync(join(dir, 'model.safetensors.index.json'), index);
  return dir;
}

const goodMap = {
  'embed.weight': 'model-00001-of-00002.safetensors',
  'layer.0.weight': 'model-00002-of-00002.safetensors',
  ids: 'model-00002-of-00002.safetensors',
};

describe('TensorSource', () => {
  it('reads a sharded folder through its index, one tensor at a time', () => {
    const source = TensorSource.fromDir(shardedFolder('good', goodMap));
    expect(source.keys()).toEqual(['embed.weight', 'layer.0.weight', 'ids']);
    expect(source.has('ids')).toBe(true);
    expect(source.info('layer.0.weight')).toMatchObject({ dtype: 'F32', shape: [1, 2] });
    expect(Array.from(source.read('ids').dataSync())).toEqual([7, 8, 9]);
    const all = source.readAll((k) => k !== 'ids');
    expect([...all.keys()]).toEqual(['embed.weight', 'layer.0.weight']);
    expect(Array.from(all.get('embed.weight')!.dataSync())).toEqual([1, 2, 3, 4]);
    tf.dispose([...all.values()]);
    expect(tensorGrowth(() => source.read('embed.weight'))).toBe(0);
    source.close();
  });

  it('reads a single-file folder', () => {
    const dir = join(root, 'single');
    mkdirSync(dir);
    writeSafetensors(join(dir, 'model.safetensors'), new Map([['w', { values: [1], shape: [1] }]]));
    const source = TensorSource.fromDir(dir);
    expect(source.keys()).toEqual(['w']);
    expect(Array.from(source.read('w').dataSync())).toEqual([1]);
    source.close();
  });

  it('names a key the index places in a shard that lacks it', () => {
    const source = TensorSource.fromDir(shardedFolder('wrong-shard', { ...goodMap, ids: 'model-00001-of-00002.safetensors' }));
    expect(() => source.read('ids')).toThrow('index lists "ids" in this shard but the shard lacks it');
    expect(() => source.read('nope')).toThrow('no tensor named "nope"');
    source.close();
  });

  it.each([
    ['not JSON', '{"weight_map": ', 'index is not valid JSON'],
    ['no weight_map', '{"metadata": {}}', 'index has no weight_map object'],
    ['a path outside the folder', JSON.stringify({ weight_map: { w: '../elsewhere.safetensors' } }), 'weight_map["w"] is not a shard file name'],
    ['a non-string shard', JSON.stringify({ weight_map: { w: 3 } }), 'weight_map["w"] is not a shard file name'],
  ])('refuses an index with %s', (name, index, message) => {
    const attempt = () => TensorSource.fromDir(shardedFolder(name.replace(/\W/g, '-'), index));
    expect(attempt).toThrow(SafetensorsFormatError);
    expect(attempt).toThrow(message);
  });

  it('refuses a folder with neither an index nor a model file', () => {
    const dir = join(root, 'empty');
    mkdirSync(dir);
    expect(() => TensorSource.fromDir(dir)).toThrow(SafetensorsFormatError);
  });
});
