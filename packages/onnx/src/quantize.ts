/**
 * Block-wise weight quantisation in the layout of onnxruntime's `com.microsoft::MatMulNBits` (contrib op, ORT ≥ 1.17;
 * bits 4 and 8 verified on the CPU provider of onnxruntime-node 1.30): for a weight used as `A · W` with `W [K, N]`,
 * each output column n is cut along K into blocks of `blockSize`; every block has a float32 scale and a zero point,
 * and `W[k, n] ≈ (code − zeroPoint) · scale`.
 *
 * - `codes` uint8 `[N, kBlocks, blockSize · bits / 8]`: codes packed low bits first along K (two per byte at 4 bits).
 * - `scales` float32 `[N · kBlocks]`.
 * - `zeroPoints` uint8 `[N · ⌈kBlocks · bits / 8⌉]`, packed like the codes, per column; absent for symmetric
 *   quantisation, where ORT's default zero point 2^(bits−1) applies.
 *
 * Error: every weight is off by at most half its block's scale (round to nearest, range covering the block).
 */
import { InvalidArgumentError } from '@bvllm/core';

export type QuantBits = 4 | 8;

export interface BlockQuantOptions {
  bits: QuantBits;
  /** Weights per block along K: a power of two ≥ 16 (MatMulNBits' requirement). Default 32. */
  blockSize?: number;
  /**
   * Symmetric: scale = absmax / (2^(bits−1) − 1), zero point 2^(bits−1) implied (no zero-point tensor). Asymmetric
   * (default for 4 bits): the block's [min, max] (widened to include 0) spans all 2^bits codes, with a zero point.
   */
  symmetric?: boolean;
}

export interface BlockQuantized {
  /** Reduction size K and output size N of `W [K, N]`. */
  k: number;
  n: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  codes: Uint8Array;
  scales: Float32Array;
  zeroPoints?: Uint8Array;
}

export function resolveBlockOptions(options: BlockQuantOptions): Required<BlockQuantOptions> {
  const blockSize = options.blockSize ?? 32;
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new InvalidArgumentError('blockSize', `must be a power of two ≥ 16, got ${blockSize}`);
  if (options.bits !== 4 && options.bits !== 8) throw new InvalidArgumentError('bits', `must be 4 or 8, got ${String(options.bits)}`);
  return { bits: options.bits, blockSize, symmetric: options.symmetric ?? options.bits === 8 };
}

/** Packs `values` (each < 2^bits) into bytes, low bits first. */
function pack(values: Uint8Array, bits: QuantBits, out: Uint8Array, offset: number): void {
  if (bits === 8) {
    out.set(values, offset);
    return;
  }
  for (let i = 0; i < values.length; i += 2) out[offset + (i >> 1)] = values[i] | ((values[i + 1] ?? 0) << 4);
}

/**
 * Quantises `columns`, the weight stored column by column: `columns[n · K + k] = W[k, n]` (which is the HF
 * `[out, in]` row-major layout itself). K not a multiple of the block size is padded with zeros, as ORT expects.
 */
export function quantizeBlocks(columns: Float32Array, k: number, n: number, options: BlockQuantOptions): BlockQuantized {
  const { bits, blockSize, symmetric } = resolveBlockOptions(options);
  if (columns.length !== k * n) throw new InvalidArgumentError('columns', `expected ${k} × ${n} = ${k * n} values, got ${columns.length}`);
  const kBlocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const maxCode = 2 ** bits - 1;
  const codes = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  const zpBytesPerColumn = Math.ceil((kBlocks * bits) / 8);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * zpBytesPerColumn);
  const blockCodes = new Uint8Array(blockSize);
  const columnZps = new Uint8Array(kBlocks);
  for (let col = 0; col < n; col++) {
    const base = col * k;
    for (let b = 0; b < kBlocks; b++) {
      const start = b * blockSize;
      const end = Math.min(start + blockSize, k);
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        const v = columns[base + i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      let scale: number;
      let zp: number;
      if (symmetric) {
        zp = 2 ** (bits - 1);
        scale = Math.max(-lo, hi) / (zp - 1);
      } else {
        scale = (hi - lo) / maxCode;
        zp = scale === 0 ? 0 : Math.min(maxCode, Math.max(0, Math.round(-lo / scale)));
      }
      // Stored as float32: quantise against the stored scale so dequantisation reproduces the codes' intent.
      const stored = Math.fround(scale === 0 ? 1 : scale);
      scales[col * kBlocks + b] = stored;
      columnZps[b] = zp;
      blockCodes.fill(zp);
      for (let i = start; i < end; i++) blockCodes[i - start] = Math.min(maxCode, Math.max(0, Math.round(columns[base + i] / stored) + zp));
      pack(blockCodes, bits, codes, (col * kBlocks + b) * blob);
    }
    if (zeroPoints) pack(columnZps, bits, zeroPoints, col * zpBytesPerColumn);
  }
  return { k, n, bits, blockSize, kBlocks, codes, scales, zeroPoints };
}

/** The weight the codes stand for, column by column like the input of {@link quantizeBlocks}. */
export function dequantizeBlocks(q: BlockQuantized): Float32Array {
  const { k, n, bits, blockSize, kBlocks } = q;
  const blob = (blockSize * bits) / 8;
  const zpBytesPerColumn = Math.ceil((kBlocks * bits) / 8);
  const unpack = (bytes: Uint8Array, offset: number, index: number) =>
    bits === 8 ? bytes[offset + index] : (bytes[offset + (index >> 1)] >> ((index & 1) * 4)) & 0xf;
  const out = new Float32Array(k * n);
  for (let col = 0; col < n; col++)
    for (let b = 0; b < kBlocks; b++) {
      const zp = q.zeroPoints ? unpack(q.zeroPoints, col * zpBytesPerColumn, b) : 2 ** (bits - 1);
      const scale = q.scales[col * kBlocks + b];
      for (let i = b * blockSize; i < Math.min((b + 1) * blockSize, k); i++)
        out[col * k + i] = (unpack(q.codes, (col * kBlocks + b) * blob, i - b * blockSize) - zp) * scale;
    }
  return out;
}

/**
 * Per-column symmetric int8 for `com.microsoft::DynamicQuantizeMatMul`, where onnxruntime quantises the activations
 * to uint8 per tensor at run time and multiplies with an integer GEMM. `codes` int8 `[K, N]` row-major (the MatMul's
 * own layout), `scales` float32 `[N]`, `W[k, n] ≈ codes[k, n] · scales[n]`.
 */
export interface ColumnQuantized {
  k: number;
  n: number;
  codes: Int8Array;
  scales: Float32Array;
}

/**
 * The largest code {@link quantizeColumnsInt8} writes by default: 7 bits, ONNX Runtime's `reduce_range`. On x86
 * without VNNI the u8 × s8 kernel sums pairs of products in 16 bits (`vpmaddubsw`), and 2 · 255 · 127 overflows
 * it: full-range codes gave 20% errors there; 255 · 63 · 2 fits. VNNI and AMX kernels run the same codes exactly.
 */
export const DYNAMIC_INT8_MAX_CODE = 63;

/**
 * Quantises `columns` (`columns[n · K + k] = W[k, n]`, the HF `[out, in]` layout) per output column: scale =
 * absmax / maxCode, codes rounded to nearest. Every weight is off by at most half its column's scale.
 */
export function quantizeColumnsInt8(columns: Float32Array, k: number, n: number, maxCode = DYNAMIC_INT8_MAX_CODE): ColumnQuantized {
  if (columns.length !== k * n) throw new InvalidArgumentError('columns', `expected ${k} × ${n} = ${k * n} values, got ${columns.length}`);
  if (!Number.isInteger(maxCode) || maxCode < 1 || maxCode > 127) throw new InvalidArgumentError('maxCode', `must be an integer in 1…127, got ${maxCode}`);
  const codes = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let col = 0; col < n; col++) {
    const base = col * k;
    let absmax = 0;
    for (let i = 0; i < k; i++) absmax = Math.max(absmax, Math.abs(columns[base + i]));
    const scale = Math.fround(absmax === 0 ? 1 : absmax / maxCode);
    scales[col] = scale;
    for (let i = 0; i < k; i++) codes[i * n + col] = Math.max(-maxCode, Math.min(maxCode, Math.round(columns[base + i] / scale)));
  }
  return { k, n, codes, scales };
}

/** The weight the codes stand for, column by column like the input of {@link quantizeColumnsInt8}. */
export function dequantizeColumns(q: ColumnQuantized): Float32Array {
  const out = new Float32Array(q.k * q.n);
  for (let col = 0; col < q.n; col++) for (let i = 0; i < q.k; i++) out[col * q.k + i] = q.codes[i * q.n + col] * q.scales[col];
  return out;
}
