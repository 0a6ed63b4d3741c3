import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { SafetensorsFormatError } from '../errors.js';
import { tensorGrowth } from '../memory.js';
import { WeightSourceError } from '../weight-source-error.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.js';
import { TensorSource } from './sharded.js';
import { writeSafetensors } from './write.js';

let root: string;

function catchError(attempt: () => unknown): Error & Record<string, unknown> {
  try {
    attempt();
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected a throw');
}

/** A safetensors file from a hand-written header (padded to 8 bytes) and its data chunks, in offset order. */
function rawSafetensors(header: Record<string, unknown>, chunks: Uint8Array[]): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json), ...chunks]);
}

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
    expect(Array.from(source.readTensor('ids').dataSync())).toEqual([7, 8, 9]);
    expect(source.read('embed.weight')).toEqual(Float32Array.of(1, 2, 3, 4));
    expect(source.origin('layer.0.weight')).toMatch(/model-00002-of-00002\.safetensors$/);
    const all = source.readAll((k) => k !== 'ids');
    expect([...all.keys()]).toEqual(['embed.weight', 'layer.0.weight']);
    expect(Array.from(all.get('embed.weight')!.dataSync())).toEqual([1, 2, 3, 4]);
    tf.dispose([...all.values()]);
    expect(tensorGrowth(() => source.readTensor('embed.weight'))).toBe(0);
    source.close();
  });

  it('reads a single-file folder', () => {
    const dir = join(root, 'single');
    mkdirSync(dir);
    writeSafetensors(join(dir, 'model.safetensors'), new Map([['w', { values: [1], shape: [1] }]]));
    const source = TensorSource.fromDir(dir);
    expect(source.keys()).toEqual(['w']);
    expect(source.read('w')).toEqual(Float32Array.of(1));
    source.close();
  });

  it('names a key the index places in a shard that lacks it', () => {
    const source = TensorSource.fromDir(shardedFolder('wrong-shard', { ...goodMap, ids: 'model-00001-of-00002.safetensors' }));
    expect(() => source.read('ids')).toThrow('index lists "ids" in this shard but the shard lacks it');
    expect(() => source.read('nope')).toThrow('no tensor named "nope"');
    source.close();
  });

  it('reads weights as float32 and refuses integer tensors and absent keys, naming the key', () => {
    const source = TensorSource.fromDir(shardedFolder('typed-errors', goodMap));
    const notFloat = catchError(() => source.read('ids'));
    expect(notFloat).toBeInstanceOf(WeightSourceError);
    expect(notFloat).toMatchObject({ code: 'WEIGHTS_MISMATCH', problem: 'not-float', keys: ['ids'] });
    expect(notFloat.message).toContain('"ids" is I64');
    for (const attempt of [() => source.read('nope'), () => source.info('nope'), () => source.origin('nope')])
      expect(catchError(attempt)).toMatchObject({ problem: 'missing-key', keys: ['nope'] });
    source.close();
  });

  it('decodes every float dtype to float32 (F16 and BF16 exactly, F64 rounded)', () => {
    const dir = join(root, 'dtypes');
    mkdirSync(dir);
    // F64 → F32 rounds 0.1; F16 and BF16 hold each value as it rounds through that format (2^-24 is F16's least subnormal).
    const values = [0, -0, 1, -2.5, 65504, 2 ** -24, 0.1, Infinity, -Infinity];
    const f64 = new Uint8Array(new Float64Array(values).buffer);
    const parts: [string, 'F16' | 'BF16', number[]][] = [['h', 'F16', values.map(f32ToF16)], ['b', 'BF16', values.map(f32ToBf16)]];
    const header: Record<string, unknown> = { d: { dtype: 'F64', shape: [values.length], data_offsets: [0, f64.length] } };
    let offset = f64.length;
    const chunks = [f64];
    for (const [key, dtype, bits] of parts) {
      const bytes = new Uint8Array(Uint16Array.from(bits).buffer);
      header[key] = { dtype, shape: [values.length], data_offsets: [offset, offset + bytes.length] };
      chunks.push(bytes);
      offset += bytes.length;
    }
    writeFileSync(join(dir, 'model.safetensors'), rawSafetensors(header, chunks));
    const source = TensorSource.fromDir(dir);
    expect(source.read('d')).toEqual(Float32Array.from(values));
    expect(Array.from(source.read('h'))).toEqual(values.map((v) => f16ToF32(f32ToF16(v))));
    expect(Array.from(source.read('b'))).toEqual(values.map((v) => bf16ToF32(f32ToBf16(v))));
    source.close();
  });

  it.each([
    ['not JSON', '{"weight_map": ', 'index is not valid JSON'],
    ['no weight_map', '{"metadata": {}}', 'index has no weight_map object'],
    ['a path outside the folder', JSON.stringify({ weight_map: { w: '../elsewhere.safetensors' } }), 'weight_map["w"] is not a shard file name'],
    ['a non-string shard', JSON.stringify({ weight_map: { w: 3 } }), 'weight_map["w"] is not a shard file name'],
    // JSON.parse would keep the second entry and read embed.weight from the wrong shard without a word.
    [
      'a key listed twice',
      '{"weight_map": {"embed.weight": "model-00001-of-00002.safetensors", "embed.weight": "model-00002-of-00002.safetensors"}}',
      'index repeats the key "weight_map" → "embed.weight"',
    ],
  ])('refuses an index with %s', (name, index, message) => {
    const attempt = () => TensorSource.fromDir(shardedFolder(name.replace(/\W/g, '-'), index));
    expect(attempt).toThrow(SafetensorsFormatError);
    expect(attempt).toThrow(message);
  });

  it('refuses an index that is a FIFO without blocking on it', () => {
    const dir = shardedFolder('fifo-index', JSON.stringify({ weight_map: goodMap }));
    rmSync(join(dir, 'model.safetensors.index.json'));
    execFileSync('mkfifo', [join(dir, 'model.safetensors.index.json')]);
    expect(() => TensorSource.fromDir(dir)).toThrow(/model\.safetensors\.index\.json: invalid safetensors file: not a regular file \(a FIFO\)/);
  });

  it('refuses a folder with neither an index nor a model file', () => {
    const dir = join(root, 'empty');
    mkdirSync(dir);
    expect(() => TensorSource.fromDir(dir)).toThrow(SafetensorsFormatError);
  });
});
