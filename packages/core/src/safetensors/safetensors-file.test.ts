import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { SafetensorsFormatError } from '../errors.js';
import { tensorGrowth } from '../memory.js';
import { readSafetensors, SafetensorsFile } from './safetensors-file.js';
import { serializeSafetensors, writeSafetensors } from './write.js';

const fixtures = new URL('../../../../../shared/fixtures/', import.meta.url);
const fixture = (path: string) => new URL(path, fixtures).pathname;
let dir: string;

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-safetensors-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const header = (bytes: Uint8Array) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { length: n, json: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) };
};

describe('safetensors round trip', () => {
  it('F32 floats and I64 integers by default, with metadata, atomically written', () => {
    const path = join(dir, 'f32.safetensors');
    const tensors = new Map<string, tf.Tensor>([
      ['b.weight', tf.tensor2d([1.5, -2, 3.25, 1e-30, 3e38, -0], [2, 3])],
      ['a.ids', tf.tensor1d([0, -5, 2147483647, -2147483648], 'int32')],
      ['empty', tf.zeros([0, 4])],
      ['scalar', tf.scalar(7)],
    ]);
    writeSafetensors(path, tensors, { metadata: { format: 'pt' } });
    const file = SafetensorsFile.open(path);
    expect(file.keys().sort()).toEqual(['a.ids', 'b.weight', 'empty', 'scalar']);
    expect(file.info('a.ids')).toMatchObject({ dtype: 'I64', shape: [4] });
    expect(file.info('b.weight')).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(file.metadata).toEqual({ format: 'pt' });
    file.close();
    const back = readSafetensors(path);
    for (const [k, t] of tensors) {
      expect(back.get(k)!.shape, k).toEqual(t.shape);
      expect(back.get(k)!.dtype, k).toBe(t.dtype);
      expect(Array.from(back.get(k)!.dataSync()), k).toEqual(Array.from(t.dataSync()));
    }
    // The header is space-padded to 8 bytes so the data region is aligned; no temp file is left behind.
    expect(header(readFileSync(path)).length % 8).toBe(0);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('I32 on request, and raw Int32Array values are written as integers', () => {
    const bytes = serializeSafetensors(new Map([['ids', { values: Int32Array.of(1, -2, 3), shape: [3] }]]), { intDtype: 'I32' });
    expect(header(bytes).json.ids).toEqual({ dtype: 'I32', shape: [3], data_offsets: [0, 12] });
    const t = SafetensorsFile.fromBytes(bytes).readTensor('ids');
    expect(t.dtype).toBe('int32');
    expect(Array.from(t.dataSync())).toEqual([1, -2, 3]);
  });

  it.each(['F16', 'BF16'] as const)('%s keeps representable values exactly and rounds the rest', (floatDtype) => {
    const exact = [1, -2, 0.5, 65504 / (floatDtype === 'F16' ? 1 : 65504), Infinity, -Infinity, 0];
    const bytes = serializeSafetensors(new Map([['w', { values: Float32Array.from(exact), shape: [7] }]]), { floatDtype });
    const file = SafetensorsFile.fromBytes(bytes);
    expect(file.info('w')).toMatchObject({ dtype: floatDtype, begin: 0, end: 14 });
    expect(Array.from(file.readValues('w'))).toEqual(exact);
    const rounded = SafetensorsFile.fromBytes(serializeSafetensors(new Map([['w', { values: [0.1, NaN], shape: [2] }]]), { floatDtype }));
    const [tenth, nan] = rounded.readValues('w');
    expect(tenth).toBe(floatDtype === 'F16' ? 0.0999755859375 : 0.10009765625);
    expect(nan).toBeNaN();
  });

  it('equal tensors give byte-identical files (sorted keys)', () => {
    const a = serializeSafetensors(new Map([['x', { values: [1], shape: [1] }], ['y', { values: [2], shape: [1] }]]));
    const b = serializeSafetensors(new Map([['y', { values: [2], shape: [1] }], ['x', { values: [1], shape: [1] }]]));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('refuses an int64 value that int32 cannot hold', () => {
    const bytes = serializeSafetensors(new Map([['big', { values: Int32Array.of(0), shape: [1] }]]));
    new DataView(bytes.buffer).setBigInt64(bytes.length - 8, 2n ** 40n, true);
    expect(() => SafetensorsFile.fromBytes(bytes, 'big.safetensors').readValues('big')).toThrow(
      'big.safetensors: invalid safetensors file: tensor "big" holds 1099511627776, outside int32',
    );
  });
});

describe('hostile files on disk (issue #20 item 4)', () => {
  it('refuses a FIFO at once instead of blocking on its first read, and a directory', () => {
    const fifo = join(dir, 'fifo.safetensors');
    execFileSync('mkfifo', [fifo]);
    expect(() => SafetensorsFile.open(fifo)).toThrow(new SafetensorsFormatError(fifo, 'not a regular file (a FIFO)'));
    const folder = join(dir, 'folder.safetensors');
    mkdirSync(folder);
    expect(() => SafetensorsFile.open(folder)).toThrow(new SafetensorsFormatError(folder, 'not a regular file (a directory)'));
  });

  it('refuses a header that repeats a tensor name or a field, which JSON.parse would collapse to the last', () => {
    const bytes = serializeSafetensors(new Map([['a', { values: [1, 2], shape: [2] }], ['b', { values: [3, 4], shape: [2] }]]));
    const n = header(bytes).length;
    const text = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
    const rewrite = (headerText: string) => {
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(Buffer.byteLength(headerText)));
      return Uint8Array.from(Buffer.concat([length, Buffer.from(headerText, 'utf8'), Buffer.from(bytes.subarray(8 + n))]));
    };
    // Both entries describe valid, tiling byte ranges, so only the repeat itself can be refused.
    const twice = rewrite(text.replace('"b":{', '"a":{'));
    expect(() => SafetensorsFile.fromBytes(twice, 'twice')).toThrow(new SafetensorsFormatError('twice', 'header repeats the key "a"'));
    const field = rewrite(text.replace('"dtype":"F32",', '"dtype":"F32","dtype":"F16",'));
    expect(() => SafetensorsFile.fromBytes(field, 'field')).toThrow('header repeats the key "a" → "dtype"');
  });
});

describe('reading one tensor', () => {
  it('reads only that tensor: a file truncated after opening still serves the tensors before the cut', () => {
    const path = join(dir, 'lazy.safetensors');
    writeSafetensors(path, new Map([['a', { values: [1, 2], shape: [2] }], ['b', { values: [3, 4, 5], shape: [3] }]]));
    const file = SafetensorsFile.open(path);
    truncateSync(path, readFileSync(path).length - 4);
    expect(Array.from(file.readValues('a'))).toEqual([1, 2]);
    expect(() => file.readValues('b')).toThrow('short read of "b" (8 of 12 bytes)');
    file.close();
    expect(() => file.readValues('a')).toThrow('file is closed');
  });

  it('names a missing tensor and an unopenable file', () => {
    const file = SafetensorsFile.fromBytes(serializeSafetensors(new Map([['a', { values: [1], shape: [1] }]])), 'x.safetensors');
    expect(() => file.info('b')).toThrow('x.safetensors: invalid safetensors file: no tensor named "b"');
    expect(() => SafetensorsFile.open(join(dir, 'absent.safetensors'))).toThrow(SafetensorsFormatError);
  });

  it('readTensor and readSafetensors do not leak', () => {
    const bytes = serializeSafetensors(new Map([['a', { values: [1, 2], shape: [2] }]]));
    writeFileSync(join(dir, 'leak.safetensors'), bytes);
    const file = SafetensorsFile.fromBytes(bytes);
    expect(tensorGrowth(() => file.readTensor('a'))).toBe(0);
    expect(tensorGrowth(() => [...readSafetensors(join(dir, 'leak.safetensors')).values()])).toBe(0);
  });
});

describe('the fixtures (key counts and shapes from their READMEs)', () => {
  it.each([
    ['qwen2-tiny-s2/model.safetensors', 39],
    ['qwen2-tiny-s3/model.safetensors', 38],
    ['qformer/model.safetensors', 113],
    ['qwen2-tiny-s2-lora/adapter_model.safetensors', 42],
  ])('%s holds %i float32 tensors with pt metadata', (path, count) => {
    const file = SafetensorsFile.open(fixture(path));
    expect(file.keys()).toHaveLength(count);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(new Set(file.keys().map((k) => file.info(k).dtype))).toEqual(new Set(['F32']));
    file.close();
  });

  it('qwen2-tiny: hidden 64, 2 KV heads of 8, intermediate 160, vocab 300, biases on q/k/v only', () => {
    const file = SafetensorsFile.open(fixture('qwen2-tiny-s2/model.safetensors'));
    const shapes = Object.fromEntries(file.keys().map((k) => [k, file.info(k).shape]));
    expect(shapes).toMatchObject({
      'model.embed_tokens.weight': [300, 64],
      'lm_head.weight': [300, 64],
      'model.norm.weight': [64],
      'model.layers.2.self_attn.q_proj.weight': [64, 64],
      'model.layers.2.self_attn.q_proj.bias': [64],
      'model.layers.0.self_attn.k_proj.weight': [16, 64],
      'model.layers.0.self_attn.v_proj.bias': [16],
      'model.layers.1.self_attn.o_proj.weight': [64, 64],
      'model.layers.1.mlp.gate_proj.weight': [160, 64],
      'model.layers.1.mlp.down_proj.weight': [64, 160],
      'model.layers.0.input_layernorm.weight': [64],
    });
    expect(file.keys().some((k) => k.endsWith('o_proj.bias'))).toBe(false);
    const embed = file.readValues('model.embed_tokens.weight');
    expect(embed).toHaveLength(300 * 64);
    expect(embed.every(Number.isFinite)).toBe(true);
    file.close();
    expect(SafetensorsFile.open(fixture('qwen2-tiny-s3/model.safetensors')).keys()).not.toContain('lm_head.weight');
  });

  it('qformer: query tokens [1, 8, 32], cross-attention only in layers 0 and 2 with key weights [32, 24]', () => {
    const file = SafetensorsFile.open(fixture('qformer/model.safetensors'));
    expect(file.info('query_tokens').shape).toEqual([1, 8, 32]);
    expect(file.info('embeddings.word_embeddings.weight').shape).toEqual([100, 32]);
    expect(file.info('embeddings.position_embeddings.weight').shape).toEqual([64, 32]);
    expect(file.info('encoder.layer.2.crossattention.attention.key.weight').shape).toEqual([32, 24]);
    const crossLayers = new Set(file.keys().filter((k) => k.includes('crossattention')).map((k) => k.split('.')[2]));
    expect(crossLayers).toEqual(new Set(['0', '2']));
    file.close();
  });

  it('the LoRA adapter: A [4, in], B [out, 4]', () => {
    const tensors = readSafetensors(fixture('qwen2-tiny-s2-lora/adapter_model.safetensors'));
    const p = 'base_model.model.model.layers.1.';
    expect(tensors.get(`${p}self_attn.k_proj.lora_A.weight`)!.shape).toEqual([4, 64]);
    expect(tensors.get(`${p}self_attn.k_proj.lora_B.weight`)!.shape).toEqual([16, 4]);
    expect(tensors.get(`${p}mlp.down_proj.lora_A.weight`)!.shape).toEqual([4, 160]);
    expect(tensors.get(`${p}mlp.gate_proj.lora_B.weight`)!.shape).toEqual([160, 4]);
    tf.dispose([...tensors.values()]);
  });

  it('a fixture re-serialised through our writer gives the same tensors', () => {
    const original = readSafetensors(fixture('qformer/model.safetensors'));
    const again = SafetensorsFile.fromBytes(serializeSafetensors(original, { metadata: { format: 'pt' } }));
    for (const [k, t] of original) expect(Array.from(again.readValues(k)), k).toEqual(Array.from(t.dataSync()));
    tf.dispose([...original.values()]);
  });
});
