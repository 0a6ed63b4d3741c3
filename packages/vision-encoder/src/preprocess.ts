/**
 * CLIP image preprocessing exactly as Hugging Face's PIL-based `CLIPImageProcessor` (spec §1.0 "Image
 * preprocessor"): resize the shortest edge with Pillow's BICUBIC, centre crop, ×1/255, CLIP mean/std. Pillow's
 * integer resampler is reproduced bit for bit (two uint8 passes, 22-bit fixed-point weights), because a float
 * resize is off by one level now and then, and a level is 0.015 after normalisation.
 */
import { z } from 'zod';
import { InvalidArgumentError, parseConfig } from '@bvllm/core';

/** CLIP (openai/clip-vit-large-patch14-336) normalisation constants, per RGB channel. */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export const preprocessOptionsSchema = z
  .object({
    /** Shortest edge after resize, pixels. Processor config of clip-vit-large-patch14-336: 336. */
    shortestEdge: z.number().int().positive().default(336),
    /** Side of the square centre crop, pixels. Same config: 336. */
    cropSize: z.number().int().positive().default(336),
    /** `square`: plain processor (inference, spec §3); `pad`: expand2square with the mean colour first (fine-tuning, spec §2). */
    aspect: z.enum(['square', 'pad']).default('square'),
    /** Per-channel mean, RGB. Default: CLIP's. */
    mean: z.tuple([z.number(), z.number(), z.number()]).default([...CLIP_MEAN]),
    /** Per-channel std, RGB. Default: CLIP's. */
    std: z.tuple([z.number(), z.number(), z.number()]).default([...CLIP_STD]),
  })
  .strict();
export type PreprocessOptions = z.infer<typeof preprocessOptionsSchema>;
export type PreprocessInput = z.input<typeof preprocessOptionsSchema>;

/** Pillow's bicubic kernel (a = −0.5), support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

const PRECISION_BITS = 22;

/** Fixed-point taps for one axis (Pillow `precompute_coeffs` + `normalize_coeffs_8bpc`). */
function coefficients(inSize: number, outSize: number): { start: Int32Array; count: Int32Array; taps: Int32Array; stride: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const taps = new Int32Array(outSize * stride);
  const weights = new Float64Array(stride);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let j = 0; j < xmax; j++) {
      weights[j] = bicubic((j + xmin - center + 0.5) / filterScale);
      sum += weights[j];
    }
    for (let j = 0; j < xmax; j++) {
      const w = sum !== 0 ? weights[j] / sum : weights[j];
      taps[o * stride + j] = Math.trunc(w * (1 << PRECISION_BITS) + (w < 0 ? -0.5 : 0.5));
    }
    start[o] = xmin;
    count[o] = xmax;
  }
  return { start, count, taps, stride };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Pillow `Image.resize((outW, outH), BICUBIC)` on interleaved RGB uint8: horizontal pass, then vertical, each ending
 * in uint8; a pass whose size does not change is skipped. Returns RGB `outH × outW × 3`.
 *
 * The loops are Pillow's arithmetic in a cache-friendly order: the horizontal pass reads one pixel's three channels
 * at a time, and the vertical pass accumulates whole rows (a column walk strides the whole image per tap). The sums
 * are the same int32 sums, so the levels are bit for bit Pillow's; only the time changes (about 10× less), which
 * matters because this runs on the event loop for every frame.
 */
export function resizeBicubic(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  let src = rgb;
  let w = width;
  const half = 1 << (PRECISION_BITS - 1);
  if (outWidth !== width) {
    const { start, count, taps, stride } = coefficients(width, outWidth);
    const out = new Uint8Array(outWidth * height * 3);
    for (let y = 0; y < height; y++) {
      const row = y * width * 3;
      let o = y * outWidth * 3;
      for (let x = 0; x < outWidth; x++, o += 3) {
        // Accumulates in int32 as Pillow does: |Σ u8·k| < 2^31 since the taps sum to 2^22.
        let a0 = half;
        let a1 = half;
        let a2 = half;
        const base = x * stride;
        const n = count[x];
        let p = row + start[x] * 3;
        for (let j = 0; j < n; j++, p += 3) {
          const k = taps[base + j];
          a0 = (a0 + src[p] * k) | 0;
          a1 = (a1 + src[p + 1] * k) | 0;
          a2 = (a2 + src[p + 2] * k) | 0;
        }
        out[o] = clip8(a0);
        out[o + 1] = clip8(a1);
        out[o + 2] = clip8(a2);
      }
    }
    src = out;
    w = outWidth;
  }
  if (outHeight !== height) {
    const { start, count, taps, stride } = coefficients(height, outHeight);
    const rowBytes = w * 3;
    const out = new Uint8Array(rowBytes * outHeight);
    const acc = new Int32Array(rowBytes);
    for (let y = 0; y < outHeight; y++) {
      acc.fill(half);
      const base = y * stride;
      for (let j = 0; j < count[y]; j++) {
        const k = taps[base + j];
        const r = (start[y] + j) * rowBytes;
        for (let i = 0; i < rowBytes; i++) acc[i] = (acc[i] + src[r + i] * k) | 0;
      }
      const o = y * rowBytes;
      for (let i = 0; i < rowBytes; i++) out[o + i] = clip8(acc[i]);
    }
    src = out;
  }
  return src === rgb ? rgb.slice() : src;
}

/** LLaVA's `expand2square`: the image centred on a square canvas of its long side, filled with `int(255·mean)`. */
export function expandToSquare(rgb: Uint8Array, width: number, height: number, mean: readonly number[]): { rgb: Uint8Array; side: number } {
  const side = Math.max(width, height);
  const out = new Uint8Array(side * side * 3);
  const fill = mean.map((m) => Math.trunc(255 * m));
  for (let i = 0; i < side * side; i++) for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = fill[ch];
  const left = Math.floor((side - width) / 2);
  const top = Math.floor((side - height) / 2);
  for (let y = 0; y < height; y++) out.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * side + left) * 3);
  return { rgb: out, side };
}

/**
 * The uint8 image the processor normalises: optional pad, shortest-edge resize (long edge truncated, not rounded),
 * centre crop with floor offsets. Returns RGB `cropSize × cropSize × 3`.
 */
export function resizeAndCrop(rgb: Uint8Array, width: number, height: number, options: PreprocessOptions): Uint8Array {
  if (rgb.length !== width * height * 3) throw new InvalidArgumentError('rgb', `expected ${width}×${height}×3 = ${width * height * 3} bytes, got ${rgb.length}`);
  let image = rgb;
  let w = width;
  let h = height;
  if (options.aspect === 'pad') {
    const square = expandToSquare(rgb, width, height, options.mean);
    image = square.rgb;
    w = h = square.side;
  }
  const s = options.shortestEdge;
  const newLong = Math.trunc((s * Math.max(w, h)) / Math.min(w, h));
  const [newW, newH] = w <= h ? [s, newLong] : [newLong, s];
  const resized = resizeBicubic(image, w, h, newW, newH);
  const crop = options.cropSize;
  if (crop > newW || crop > newH) throw new InvalidArgumentError('cropSize', `${crop} exceeds the resized image ${newW}×${newH}`);
  const top = Math.floor((newH - crop) / 2);
  const left = Math.floor((newW - crop) / 2);
  const out = new Uint8Array(crop * crop * 3);
  for (let y = 0; y < crop; y++) out.set(resized.subarray(((top + y) * newW + left) * 3, ((top + y) * newW + left + crop) * 3), y * crop * 3);
  return out;
}

/**
 * One RGB frame to model input: float32 **NHWC** `[S, S, 3]` (S = cropSize), the layout tf.conv2d and our patch
 * embedding take, unlike PyTorch's `[3, S, S]`. Arithmetic is float32 in the processor's order: `u8·(1/255)`, then
 * `(x − mean)/std`.
 */
export function preprocessClip(rgb: Uint8Array, width: number, height: number, options: PreprocessInput = {}): Float32Array {
  const opts = parseConfig(preprocessOptionsSchema, options, 'preprocess options');
  const crop = resizeAndCrop(rgb, width, height, opts);
  const mean = opts.mean.map(Math.fround);
  const std = opts.std.map(Math.fround);
  const out = new Float32Array(crop.length);
  for (let i = 0; i < crop.length; i++) {
    const ch = i % 3;
    const x = Math.fround(crop[i] * (1 / 255));
    out[i] = Math.fround(Math.fround(x - mean[ch]) / std[ch]);
  }
  return out;
}
