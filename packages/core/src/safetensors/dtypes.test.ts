import { describe, expect, it } from 'vitest';
import { bf16ToF32, decodeFloats, encodeFloats, f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.js';

/** Every 16-bit pattern decodes and re-encodes to itself; a NaN pattern may come back as another NaN. */
function expectExactRoundTrip(decode: (bits: number) => number, encode: (value: number) => number): void {
  for (let bits = 0; bits < 0x10000; bits++) {
    const back = encode(decode(bits));
    if (Number.isNaN(decode(bits))) expect(Number.isNaN(decode(back))).toBe(true);
    else if (back !== bits) expect.fail(`0x${bits.toString(16)} came back as 0x${back.toString(16)}`);
  }
}

describe('IEEE half (F16)', () => {
  it('decodes normals, signed zeros, subnormals, infinities and NaN', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(Object.is(f16ToF32(0x0000), 0)).toBe(true);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0xfc01)).toBeNaN();
  });

  it('every half value survives half → float → half exactly (NaN stays NaN)', () => {
    expectExactRoundTrip(f16ToF32, f32ToF16);
  });

  it('rounds to nearest, ties to even, in normals and subnormals', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1 + 2⁻¹⁰: even is 1
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between mantissas 1 and 2: even is 2
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie rounds up
    expect(f32ToF16(2 - 2 ** -12)).toBe(0x4000); // rounding carries into the exponent
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // half the smallest subnormal: tie to even 0
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between subnormals 1 and 2: even is 2
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001); // above the tie rounds up to the smallest subnormal
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // largest subnormal + half a step: up to the smallest normal
    expect(f32ToF16(1e-8)).toBe(0x0000);
    expect(f32ToF16(-1e-8)).toBe(0x8000);
  });

  it('overflows to infinity past the largest half, keeps signs, infinities and NaN', () => {
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // the tie between 65504 and 65536 rounds to even, which is infinity
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(-1e6)).toBe(0xfc00);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
  });
});

describe('bfloat16 (BF16)', () => {
  it('decodes as the top half of a float32', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc040)).toBe(-3);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0xff80)).toBe(-Infinity);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(bf16ToF32(0x0001)).toBe(Math.fround(2 ** -133)); // smallest subnormal
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
  });

  it('every bf16 value survives bf16 → float → bf16 exactly (NaN stays NaN)', () => {
    expectExactRoundTrip(bf16ToF32, f32ToBf16);
  });

  it('rounds to nearest, ties to even; NaN never rounds into infinity', () => {
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // FLT_MAX rounds up to infinity, as PyTorch does
    expect(f32ToBf16(1.5 * 2 ** -133)).toBe(0x0002); // subnormal tie between 1 and 2: even is 2
    // A NaN whose payload sits only in the low bits would truncate to infinity; it must stay NaN.
    const f = new Float32Array(1);
    new Uint32Array(f.buffer)[0] = 0x7f800001;
    expect(Number.isNaN(bf16ToF32(f32ToBf16(f[0])))).toBe(true);
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
  });
});

describe('bulk float codecs', () => {
  // Every 16-bit pattern, as the bytes a file holds, so the bulk path is checked against the per-value one everywhere.
  const allHalfBits = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
  const allHalfBytes = new Uint8Array(allHalfBits.buffer);

  it('decodeFloats agrees with the per-value decoders on every F16 and BF16 pattern', () => {
    const h = decodeFloats('F16', allHalfBytes);
    const b = decodeFloats('BF16', allHalfBytes);
    for (let bits = 0; bits < 0x10000; bits++) {
      if (!Object.is(h[bits], Math.fround(f16ToF32(bits)))) expect.fail(`F16 0x${bits.toString(16)}: ${h[bits]} vs ${f16ToF32(bits)}`);
      if (!Object.is(b[bits], bf16ToF32(bits))) expect.fail(`BF16 0x${bits.toString(16)}: ${b[bits]} vs ${bf16ToF32(bits)}`);
    }
  });

  it('decodes from an unaligned view (a tensor at an odd offset of a shared buffer)', () => {
    const bytes = new Uint8Array(1 + 8);
    bytes.set(new Uint8Array(Float32Array.of(1.5, -3).buffer), 1);
    expect(decodeFloats('F32', bytes.subarray(1))).toEqual(Float32Array.of(1.5, -3));
    const bf = new Uint8Array(1 + 4);
    bf.set(new Uint8Array(Uint16Array.of(0x3fc0, 0xc040).buffer), 1);
    expect(decodeFloats('BF16', bf.subarray(1))).toEqual(Float32Array.of(1.5, -3));
    const f64 = new Uint8Array(3 + 16);
    f64.set(new Uint8Array(Float64Array.of(0.1, 2).buffer), 3);
    expect(decodeFloats('F64', f64.subarray(3))).toEqual(Float32Array.of(0.1, 2));
  });

  it('encodeFloats agrees with the per-value encoders, rounding ties to even', () => {
    // Bit patterns that sit on, just below and just above each format's rounding ties, plus specials.
    const values = Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -11, 65520, 2 ** -25, -0, Infinity, NaN, 3.14159, -1e-30);
    const bf = new Uint16Array(encodeFloats(values, 'BF16').buffer);
    const h = new Uint16Array(encodeFloats(values, 'F16').buffer);
    expect(Array.from(bf)).toEqual(Array.from(values, f32ToBf16));
    expect(Array.from(h)).toEqual(Array.from(values, f32ToF16));
    // By hand: 1 + 2⁻⁸ is the tie between BF16 1 and 1 + 2⁻⁷ and goes to the even mantissa (1.0, 0x3f80);
    // 1 + 3·2⁻⁸ ties between mantissas 1 and 2 and goes to 2 (0x3f82); a hair above the first tie rounds up (0x3f81).
    expect(Array.from(bf.subarray(0, 3))).toEqual([0x3f80, 0x3f82, 0x3f81]);
    expect(new Uint8Array(encodeFloats(values, 'F32'))).toEqual(new Uint8Array(values.buffer));
  });

  it('encodes a subarray view, not its whole buffer', () => {
    const values = Float32Array.of(9, 1, 2, 9).subarray(1, 3);
    expect(decodeFloats('BF16', encodeFloats(values, 'BF16'))).toEqual(Float32Array.of(1, 2));
    expect(decodeFloats('F32', encodeFloats(values, 'F32'))).toEqual(Float32Array.of(1, 2));
  });
});
