/**
 * Resizing a ViT's absolute position embeddings to another patch grid, as LAVIS/B-VLLM `interpolate_pos_embed`
 * and Hugging Face `interpolate_pos_encoding` do: `torch.nn.functional.interpolate(mode="bicubic",
 * align_corners=False)`, Keys' kernel with A = −0.75, edge-clamped taps, no antialias (spec §1.0: EVA's 16×16
 * grid at 224 px becomes 24×24 at 336 px). Runs once at load time, on plain arrays.
 */

/** Keys' cubic convolution kernel as torch uses it (A = −0.75; not Pillow's −0.5). */
function cubic(x: number): number {
  const a = -0.75;
  const t = Math.abs(x);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/** The `[outSize, inSize]` matrix of one axis: `out = M · in`. Taps past the edge fold onto the edge sample. */
export function bicubicMatrix(inSize: number, outSize: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    // align_corners=False source coordinate; torch does not clamp it at 0 in cubic mode.
    const src = scale * (o + 0.5) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubic(t + 1), cubic(t), cubic(1 - t), cubic(2 - t)];
    for (let k = 0; k < 4; k++) {
      const i = Math.min(Math.max(i0 - 1 + k, 0), inSize - 1);
      m[o * inSize + i] += w[k];
    }
  }
  return m;
}

/**
 * `values` `[prefix + inH·inW, D]` (row-major grid after `prefix` class-token rows, which are copied unchanged) →
 * `[prefix + outH·outW, D]`.
 */
export function interpolatePositions(
  values: Float32Array,
  dim: number,
  inGrid: readonly [number, number],
  outGrid: readonly [number, number],
  prefix: number,
): Float32Array {
  const [inH, inW] = inGrid;
  const [outH, outW] = outGrid;
  const rows = bicubicMatrix(inH, outH);
  const cols = bicubicMatrix(inW, outW);
  const out = new Float32Array((prefix + outH * outW) * dim);
  out.set(values.subarray(0, prefix * dim));
  // Separable: columns first into [inH, outW, D], then rows (linear, so the order does not change the result).
  const tmp = new Float64Array(inH * outW * dim);
  for (let y = 0; y < inH; y++)
    for (let x = 0; x < outW; x++)
      for (let j = 0; j < inW; j++) {
        const w = cols[x * inW + j];
        if (w === 0) continue;
        const src = (prefix + y * inW + j) * dim;
        const dst = (y * outW + x) * dim;
        for (let d = 0; d < dim; d++) tmp[dst + d] += w * values[src + d];
      }
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++) {
      const dst = (prefix + y * outW + x) * dim;
      for (let i = 0; i < inH; i++) {
        const w = rows[y * inH + i];
        if (w === 0) continue;
        const src = (i * outW + x) * dim;
        for (let d = 0; d < dim; d++) out[dst + d] += w * tmp[src + d];
      }
    }
  return out;
}
