import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { SafetensorsFormatError } from '../errors.js';
import { Rng } from '../random.js';
import { SafetensorsFile } from './safetensors-file.js';
import { serializeSafetensors } from './write.js';

/**
 * Thousands of generated hostile files: each must parse into readable tensors or throw SafetensorsFormatError,
 * never another error and never an allocation larger than the file (a header may claim any length or shape).
 */
const rng = Rng.fromSeed(20241124);
const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)];

beforeAll(async () => {
  await initBackend();
});

afterEach(() => {
  vi.restoreAllMocks();
});

function validFile(): Uint8Array {
  return serializeSafetensors(
    new Map([
      ['a', { values: [1.5, -2, 3, 4, 5, 6], shape: [2, 3] }],
      ['b.ids', { values: Int32Array.of(1, -2, 3), shape: [3] }],
      ['c', { values: [0.25], shape: [] }],
    ]),
    { floatDtype: pick(['F32', 'F16', 'BF16'] as const), metadata: { format: 'pt' } },
  );
}

function withHeader(json: string, dataBytes: number, lengthOverride?: bigint): Uint8Array {
  const header = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + header.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(header.length), true);
  out.set(header, 8);
  for (let i = 8 + header.length; i < out.length; i++) out[i] = rng.int(256);
  return out;
}

const weirdNumbers = [0, 1, 2, 3, 4, 8, 12, -1, -8, 1.5, 0.1, 1e308, 2 ** 53, 2 ** 53 + 2, 2 ** 31, 2 ** 32, 1e21, -0];
const weirdValues = ['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F64', 'F8_E4M3', 'C64', 'f32', '', null, true, {}, [], '4'];

function randomEntry(): unknown {
  const shape =
    rng.int(5) === 0
      ? pick([null, 'x', 3, [[1]], {}, ['2'], [NaN]])
      : Array.from({ length: rng.int(4) }, () => (rng.int(3) === 0 ? pick(weirdNumbers) : rng.int(5)));
  const offsets =
    rng.int(5) === 0
      ? pick([null, [0], [0, 1, 2], ['0', '4'], [4, 0], {}, [0.5, 4]])
      : [rng.int(3) === 0 ? pick(weirdNumbers) : rng.int(40), rng.int(3) === 0 ? pick(weirdNumbers) : rng.int(40)];
  const entry: Record<string, unknown> = { dtype: pick(weirdValues), shape, data_offsets: offsets };
  if (rng.int(8) === 0) delete entry[pick(['dtype', 'shape', 'data_offsets'])];
  if (rng.int(8) === 0) entry.extra = 1;
  return entry;
}

function randomHeaderFile(): Uint8Array {
  const header: Record<string, unknown> = {};
  for (let i = rng.int(4); i >= 0; i--) header[pick(['a', 'b', '__metadata__', '__proto__', 'ä', ''])] = randomEntry();
  if (rng.int(4) === 0) header.__metadata__ = pick([{ format: 'pt' }, { n: 1 }, 'pt', null, []]);
  const json = rng.int(10) === 0 ? pick(['[]', 'null', '"x"', '1', '{', '{"a":', '{}', '\u0000', '{"a":1}']) : JSON.stringify(header);
  return withHeader(json, rng.int(48));
}

function hugeLengthFile(): Uint8Array {
  const length = pick([2n ** 64n - 1n, 2n ** 63n, 2n ** 53n, 100_000_001n, 99_999_999n, 4096n, 0n, 1n]);
  return withHeader('{}', rng.int(16), length);
}

function truncated(): Uint8Array {
  const file = validFile();
  return file.subarray(0, rng.int(file.length));
}

function bitFlips(): Uint8Array {
  const file = validFile().slice();
  for (let i = 0, n = 1 + rng.int(6); i < n; i++) {
    const at = rng.int(4) === 0 ? rng.int(file.length) : rng.int(Math.min(file.length, 120));
    file[at] ^= 1 << rng.int(8);
  }
  return file;
}

function byteSplices(): Uint8Array {
  const file = validFile().slice();
  const at = 8 + rng.int(Math.min(file.length - 8, 110));
  const text = pick(['-1', '1e9', '9', '0', '"', '}', ']', ',', '99999999999', '2.5', 'null', '[', 'F64', 'I64']);
  file.set(Buffer.from(text).subarray(0, file.length - at), at);
  return file;
}

const generators = { randomHeaderFile, hugeLengthFile, truncated, bitFlips, byteSplices };

describe('safetensors fuzz', () => {
  it('every corrupt file parses validly or throws SafetensorsFormatError, with bounded allocations', () => {
    const allocations: number[] = [];
    const alloc = Buffer.alloc.bind(Buffer);
    vi.spyOn(Buffer, 'alloc').mockImplementation(((size: number, ...rest: []) => {
      allocations.push(size);
      return alloc(size, ...rest);
    }) as typeof Buffer.alloc);
    const outcomes = new Map<string, { valid: number; refused: number }>();
    const tensorsBefore = tf.memory().numTensors;
    for (let i = 0; i < 5000; i++) {
      const name = pick(Object.keys(generators) as (keyof typeof generators)[]);
      const bytes = generators[name]();
      allocations.length = 0;
      const tally = outcomes.get(name) ?? { valid: 0, refused: 0 };
      outcomes.set(name, tally);
      try {
        const file = SafetensorsFile.fromBytes(bytes, `case-${i}`);
        for (const key of file.keys()) {
          const t = file.readTensor(key);
          expect(t.size).toBe(file.info(key).shape.reduce((a, b) => a * b, 1));
          t.dispose();
        }
        tally.valid++;
      } catch (error) {
        if (!(error instanceof SafetensorsFormatError))
          expect.fail(`case ${i} (${name}) threw ${(error as Error)?.name}: ${(error as Error)?.message}\n${Buffer.from(bytes).toString('latin1')}`);
        tally.refused++;
      }
      if (Math.max(0, ...allocations) > bytes.length) expect.fail(`case ${i} (${name}) allocated ${Math.max(...allocations)} bytes for a ${bytes.length}-byte file`);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // Each generator must have produced refusals, and the mutation generators some files that still parse.
    for (const [name, { refused }] of outcomes) expect(refused, name).toBeGreaterThan(50);
    expect(outcomes.get('truncated')!.valid + outcomes.get('bitFlips')!.valid + outcomes.get('randomHeaderFile')!.valid).toBeGreaterThan(0);
  });

  it('specific hostile headers are refused with the reason', () => {
    const cases: [string, string][] = [
      ['{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 'overlaps'],
      ['{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 'gap in the data region before tensor "a"'],
      ['{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 'spans 8 bytes but F32 [3] needs 12'],
      ['{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}', 'ends at 80, past the data region of 8 bytes'],
      ['{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}', 'unsupported dtype "F8_E4M3"'],
      ['{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', 'invalid shape [-2]'],
      ['{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', 'invalid shape [2.5]'],
      ['{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}', 'is too large'],
      ['{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', 'ends (0) before it begins (8)'],
      ['{"__metadata__":{"n":1}}', '__metadata__.n is not a string'],
      ['[1,2]', 'header is not a JSON object'],
      ['{"a":', 'header is not valid JSON'],
    ];
    for (const [json, reason] of cases) expect(() => SafetensorsFile.fromBytes(withHeader(json, 8)), json).toThrow(reason);
    expect(() => SafetensorsFile.fromBytes(new Uint8Array(5))).toThrow('file is 5 bytes, shorter than the 8-byte header length');
    expect(() => SafetensorsFile.fromBytes(withHeader('{}', 0, 2n ** 64n - 1n))).toThrow('exceeds 100000000 bytes');
    expect(() => SafetensorsFile.fromBytes(withHeader('{}', 0, 4096n))).toThrow('exceeds the file size');
  });
});
