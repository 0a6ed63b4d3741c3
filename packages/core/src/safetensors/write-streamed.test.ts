import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../random.js';
import { WeightSourceError } from '../weight-source-error.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.js';
import { SafetensorsFile } from './safetensors-file.js';
import { serializeSafetensors } from './write.js';
import { writeSafetensorsStreamed, type StreamedTensor } from './write-streamed.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'bvllm-streamed-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function entry(key: string, shape: number[], dtype: StreamedTensor['dtype'], values: Float32Array, reads?: string[]): StreamedTensor {
  return {
    key,
    shape,
    dtype,
    read: () => {
      reads?.push(key);
      return values;
    },
  };
}

describe('writeSafetensorsStreamed', () => {
  it('writes what SafetensorsFile reads back, within each dtype\'s rounding', () => {
    const rng = Rng.fromSeed(3);
    const a = rng.normalArray(6 * 5);
    const b = rng.normalArray(7);
    const c = rng.normalArray(3 * 2);
    const path = join(root, 'mixed.safetensors');
    const reads: string[] = [];
    const progress: [string, number, number][] = [];
    writeSafetensorsStreamed(
      path,
      [entry('z.bf16', [6, 5], 'BF16', a, reads), entry('a.f16', [7], 'F16', b, reads), entry('m.f32', [3, 2], 'F32', c, reads), entry('empty', [0, 4], 'BF16', new Float32Array(0), reads)],
      { metadata: { format: 'pt' }, onTensor: (key, done, total) => progress.push([key, done, total]) },
    );
    const file = SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.info('z.bf16')).toMatchObject({ dtype: 'BF16', shape: [6, 5] });
    expect(file.readFloat32('z.bf16')).toEqual(Float32Array.from(a, (v) => bf16ToF32(f32ToBf16(v))));
    expect(file.readFloat32('a.f16')).toEqual(Float32Array.from(b, (v) => f16ToF32(f32ToF16(v))));
    expect(file.readFloat32('m.f32')).toEqual(c);
    expect(file.readFloat32('empty')).toEqual(new Float32Array(0));
    // Widest dtype first, then by key: every tensor starts on a multiple of its element size.
    expect(file.keys().sort((x, y) => file.info(x).begin - file.info(y).begin)).toEqual(['m.f32', 'a.f16', 'empty', 'z.bf16']);
    for (const key of file.keys()) expect(file.info(key).begin % (file.info(key).dtype === 'F32' ? 4 : 2)).toBe(0);
    file.close();
    // One read per tensor, in file order, with progress after each.
    expect(reads).toEqual(['m.f32', 'a.f16', 'empty', 'z.bf16']);
    expect(progress).toEqual([['m.f32', 1, 4], ['a.f16', 2, 4], ['empty', 3, 4], ['z.bf16', 4, 4]]);
  });

  it('rounds BF16 to nearest, ties to even (values checked by hand)', () => {
    const path = join(root, 'bf16-by-hand.safetensors');
    // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷ (7 mantissa bits): the even one is 1. 1 + 3·2⁻⁸ is halfway between
    // mantissas 1 and 2: the even one is 1 + 2⁻⁶. π keeps 8 significant bits: 3.140625. 1 + 2⁻⁸ + 2⁻²⁰ is past the tie.
    writeSafetensorsStreamed(path, [entry('w', [4], 'BF16', Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, Math.PI, 1 + 2 ** -8 + 2 ** -20))]);
    const file = SafetensorsFile.open(path);
    expect(Array.from(new Uint16Array(Uint8Array.from(file.readBytes('w')).buffer))).toEqual([0x3f80, 0x3f82, 0x4049, 0x3f81]);
    expect(Array.from(file.readFloat32('w'))).toEqual([1, 1 + 2 ** -6, 3.140625, 1 + 2 ** -7]);
    file.close();
  });

  it('pads the JSON header with spaces to 8 bytes, so the data region starts aligned', () => {
    for (const key of ['w', 'ww', 'www', 'wwww', 'wwwww']) {
      const path = join(root, `pad-${key}.safetensors`);
      writeSafetensorsStreamed(path, [entry(key, [1], 'F32', Float32Array.of(1))]);
      const bytes = readFileSync(path);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      expect(headerLength % 8).toBe(0);
      const json = bytes.subarray(8, 8 + headerLength).toString('utf8');
      expect(json.trimEnd()).toBe(JSON.stringify({ [key]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
      expect(/^ *$/.test(json.slice(json.trimEnd().length))).toBe(true);
    }
  });

  it('gives the bytes serializeSafetensors gives for the same tensors in one dtype', () => {
    const rng = Rng.fromSeed(4);
    const tensors = new Map([
      ['layer.1.w', { values: rng.normalArray(12), shape: [3, 4] }],
      ['layer.0.w', { values: rng.normalArray(5), shape: [5] }],
    ]);
    for (const dtype of ['F32', 'BF16', 'F16'] as const) {
      const path = join(root, `same-${dtype}.safetensors`);
      writeSafetensorsStreamed(path, [...tensors].map(([key, t]) => entry(key, t.shape, dtype, t.values)), { metadata: { format: 'pt' } });
      const expected = serializeSafetensors(tensors, { floatDtype: dtype, metadata: { format: 'pt' } });
      expect(new Uint8Array(readFileSync(path))).toEqual(expected);
    }
  });

  it('refuses values of the wrong length naming the key, and leaves no file behind', () => {
    const path = join(root, 'short.safetensors');
    const attempt = () => writeSafetensorsStreamed(path, [entry('ok', [2], 'F32', Float32Array.of(1, 2)), entry('short', [2, 3], 'BF16', new Float32Array(5))]);
    expect(attempt).toThrow(WeightSourceError);
    expect(attempt).toThrow('tensor "short" [2, 3] needs 6 values, read() gave 5');
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith('short'))).toEqual([]);
  });

  it('refuses duplicate keys, the reserved metadata key, other dtypes and bad shapes before writing', () => {
    const path = join(root, 'refused.safetensors');
    const one = Float32Array.of(1);
    for (const entries of [
      [entry('a', [1], 'F32', one), entry('a', [1], 'F32', one)],
      [entry('__metadata__', [1], 'F32', one)],
      [{ ...entry('a', [1], 'F32', one), dtype: 'I64' as 'F32' }],
      [entry('a', [-1], 'F32', one)],
    ])
      expect(() => writeSafetensorsStreamed(path, entries)).toThrow(InvalidArgumentError);
    expect(existsSync(path)).toBe(false);
  });
});
