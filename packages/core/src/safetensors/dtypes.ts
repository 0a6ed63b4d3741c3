/** The safetensors dtypes we read and write, with their byte widths. */
export const dtypeBytes = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1, F64: 8 } as const;
export type SafetensorsDtype = keyof typeof dtypeBytes;

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(dtypeBytes, value);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half → float. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float → IEEE half, round to nearest even (as PyTorch's `.half()`). */
export function f32ToF16(value: number): number {
  f32[0] = value;
  return f16FromBits(u32[0]);
}

/** IEEE half of the float32 whose bit pattern is `x`, round to nearest even. */
function f16FromBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to infinity, as IEEE rounding does.
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16 → float: the top 16 bits of a float32. */
export function bf16ToF32(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** float → bfloat16, round to nearest even; NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  return bf16FromBits(u32[0]);
}

function bf16FromBits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float dtypes a weight can be stored as; integer tensors are not weights. */
export type FloatDtype = Extract<SafetensorsDtype, 'F32' | 'F16' | 'BF16' | 'F64'>;

export function isFloatDtype(dtype: SafetensorsDtype): dtype is FloatDtype {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64';
}

// Safetensors data is little-endian. On a little-endian host (every platform Node ships prebuilt for but s390x)
// the bytes are reinterpreted through typed-array views, which is what makes a 15 GB BF16 checkpoint decode at memory
// speed; a big-endian host takes the DataView path.
const hostLittleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

let f16Table: Float32Array | undefined;

/** All 65,536 halfs as floats (256 KB, built on first use): one table look-up per element. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/** `bytes` if it starts on a `width`-byte boundary of its buffer, else an aligned copy (a typed view needs one). */
function aligned(bytes: Uint8Array, width: number): Uint8Array {
  return bytes.byteOffset % width === 0 ? bytes : bytes.slice();
}

/**
 * Raw little-endian float bytes → float32 values, freshly allocated. `[n·width]` bytes → `[n]`. F64 rounds to
 * float32; F16 and BF16 widen exactly.
 */
export function decodeFloats(dtype: FloatDtype, bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength / dtypeBytes[dtype];
  const out = new Float32Array(n);
  if (!hostLittleEndian) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++)
      out[i] =
        dtype === 'F32' ? view.getFloat32(i * 4, true)
        : dtype === 'F64' ? view.getFloat64(i * 8, true)
        : dtype === 'F16' ? f16ToF32(view.getUint16(i * 2, true))
        : bf16ToF32(view.getUint16(i * 2, true));
    return out;
  }
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer).set(bytes);
      break;
    case 'F64': {
      const src = aligned(bytes, 8);
      out.set(new Float64Array(src.buffer, src.byteOffset, n));
      break;
    }
    case 'F16': {
      const table = f16ToF32Table();
      const src = aligned(bytes, 2);
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = table[h[i]];
      break;
    }
    case 'BF16': {
      // A bfloat16 is the top half of a float32: shift its bits into place.
      const src = aligned(bytes, 2);
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      break;
    }
  }
  return out;
}

/** float32 values → little-endian bytes of `dtype`, rounding to nearest even (as PyTorch's `.half()` / `.bfloat16()`). */
export function encodeFloats(values: Float32Array, dtype: Exclude<FloatDtype, 'F64'>): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * dtypeBytes[dtype]);
  if (!hostLittleEndian) {
    const view = new DataView(out.buffer);
    for (let i = 0; i < n; i++)
      if (dtype === 'F32') view.setFloat32(i * 4, values[i], true);
      else view.setUint16(i * 2, dtype === 'F16' ? f32ToF16(values[i]) : f32ToBf16(values[i]), true);
    return out;
  }
  if (dtype === 'F32') {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return out;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const h = new Uint16Array(out.buffer);
  if (dtype === 'BF16') for (let i = 0; i < n; i++) h[i] = bf16FromBits(bits[i]);
  else for (let i = 0; i < n; i++) h[i] = f16FromBits(bits[i]);
  return out;
}
