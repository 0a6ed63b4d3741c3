/**
 * CLIP and SigLIP have no reference fixture, so tiny checkpoints are written here under their real Hugging Face key
 * names (random weights) and the loaded model is compared with a naive loop implementation written from the HF
 * modeling code (`CLIPVisionTransformer`, `SiglipVisionTransformer`), which reads the raw HF tensors and NCHW
 * pixels. A wrong key mapping, tensor layout or block flavour makes the outputs differ.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, initBackend, tf, writeSafetensors } from '@bvllm/core';
import { loadVisionTransformer } from './load-vit.js';
import { tempDir } from './test-videos.js';

type Weights = Map<string, { values: Float32Array; shape: number[] }>;

const C = 8;
const HEADS = 2;
const FF = 12;
const LAYERS = 2;
const P = 4;
const S = 8; // 2×2 patch grid

function randomWeights(shapes: Record<string, number[]>, rng: Rng): Weights {
  const w: Weights = new Map();
  for (const [k, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = rng.normalArray(n).map((v) => (k.includes('norm') && k.endsWith('weight') ? 1 + 0.1 * v : 0.3 * v));
    w.set(k, { values, shape });
  }
  return w;
}

function layerShapes(prefix: string): Record<string, number[]> {
  const s: Record<string, number[]> = {};
  for (let i = 0; i < LAYERS; i++) {
    const l = `${prefix}encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) Object.assign(s, { [`${l}${n}.weight`]: [C], [`${l}${n}.bias`]: [C] });
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) Object.assign(s, { [`${l}self_attn.${n}.weight`]: [C, C], [`${l}self_attn.${n}.bias`]: [C] });
    Object.assign(s, { [`${l}mlp.fc1.weight`]: [FF, C], [`${l}mlp.fc1.bias`]: [FF], [`${l}mlp.fc2.weight`]: [C, FF], [`${l}mlp.fc2.bias`]: [C] });
  }
  return s;
}

// ---- naive reference: plain loops, row-major Float32Arrays ----
const get = (w: Weights, k: string) => w.get(`vision_model.${k}`)!.values;
function linearRef(x: Float32Array, rows: number, w: Float32Array, b: Float32Array, inF: number, outF: number): Float32Array {
  const y = new Float32Array(rows * outF);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) {
    let s = b[o];
    for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
    y[r * outF + o] = s;
  }
  return y;
}
function layerNormRef(x: Float32Array, rows: number, w: Float32Array, b: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < C; i++) mean += x[r * C + i] / C;
    let v = 0;
    for (let i = 0; i < C; i++) v += (x[r * C + i] - mean) ** 2 / C;
    for (let i = 0; i < C; i++) y[r * C + i] = ((x[r * C + i] - mean) / Math.sqrt(v + eps)) * w[i] + b[i];
  }
  return y;
}
function mhaRef(q: Float32Array, lq: number, k: Float32Array, v: Float32Array, lk: number): Float32Array {
  const d = C / HEADS;
  const out = new Float32Array(lq * C);
  for (let h = 0; h < HEADS; h++) for (let i = 0; i < lq; i++) {
    const scores = new Float64Array(lk);
    for (let j = 0; j < lk; j++) {
      for (let t = 0; t < d; t++) scores[j] += q[i * C + h * d + t] * k[j * C + h * d + t];
      scores[j] /= Math.sqrt(d);
    }
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const z = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < lk; j++) for (let t = 0; t < d; t++) out[i * C + h * d + t] += (e[j] / z) * v[j * C + h * d + t];
  }
  return out;
}
const quickGeluRef = (x: number) => x / (1 + Math.exp(-1.702 * x));
const geluTanhRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
function mlpRef(w: Weights, prefix: string, x: Float32Array, rows: number, act: (v: number) => number): Float32Array {
  const h = linearRef(x, rows, get(w, `${prefix}fc1.weight`), get(w, `${prefix}fc1.bias`), C, FF).map(act);
  return linearRef(h, rows, get(w, `${prefix}fc2.weight`), get(w, `${prefix}fc2.bias`), FF, C);
}
/** HF ViT forward on one NCHW image; returns last block output and, for SigLIP, the pooled head output. */
function referenceForward(w: Weights, pixels: Float32Array, family: 'clip' | 'siglip'): { last: Float32Array; pooled?: Float32Array } {
  const g = S / P;
  const eps = family === 'clip' ? 1e-5 : 1e-6;
  const act = family === 'clip' ? quickGeluRef : geluTanhRef;
  const cls = family === 'clip' ? 1 : 0;
  const L = g * g + cls;
  let x: Float32Array = new Float32Array(L * C);
  const pw = get(w, 'embeddings.patch_embedding.weight');
  for (let gy = 0; gy < g; gy++) for (let gx = 0; gx < g; gx++) for (let d = 0; d < C; d++) {
    let s = family === 'siglip' ? get(w, 'embeddings.patch_embedding.bias')[d] : 0;
    for (let c = 0; c < 3; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++)
      s += pw[((d * 3 + c) * P + ky) * P + kx] * pixels[(c * S + gy * P + ky) * S + gx * P + kx];
    x[(cls + gy * g + gx) * C + d] = s;
  }
  if (cls) x.set(get(w, 'embeddings.class_embedding'), 0);
  const pos = get(w, 'embeddings.position_embedding.weight');
  x = x.map((v, i) => v + pos[i]);
  if (family === 'clip') x = layerNormRef(x, L, get(w, 'pre_layrnorm.weight'), get(w, 'pre_layrnorm.bias'), eps);
  for (let i = 0; i < LAYERS; i++) {
    const l = `encoder.layers.${i}.`;
    const h = layerNormRef(x, L, get(w, `${l}layer_norm1.weight`), get(w, `${l}layer_norm1.bias`), eps);
    const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((n) => linearRef(h, L, get(w, `${l}self_attn.${n}.weight`), get(w, `${l}self_attn.${n}.bias`), C, C));
    const a = linearRef(mhaRef(q, L, k, v, L), L, get(w, `${l}self_attn.out_proj.weight`), get(w, `${l}self_attn.out_proj.bias`), C, C);
    x = x.map((val, j) => val + a[j]);
    const m = mlpRef(w, `${l}mlp.`, layerNormRef(x, L, get(w, `${l}layer_norm2.weight`), get(w, `${l}layer_norm2.bias`), eps), L, act);
    x = x.map((val, j) => val + m[j]);
  }
  if (family === 'clip') return { last: x };
  const normed = layerNormRef(x, L, get(w, 'post_layernorm.weight'), get(w, 'post_layernorm.bias'), eps);
  const inW = get(w, 'head.attention.in_proj_weight');
  const inB = get(w, 'head.attention.in_proj_bias');
  const part = (arr: Float32Array, i: number, size: number) => arr.subarray(i * size, (i + 1) * size);
  const q = linearRef(get(w, 'head.probe'), 1, part(inW, 0, C * C), part(inB, 0, C), C, C);
  const k = linearRef(normed, L, part(inW, 1, C * C), part(inB, 1, C), C, C);
  const v = linearRef(normed, L, part(inW, 2, C * C), part(inB, 2, C), C, C);
  const h = linearRef(mhaRef(q, 1, k, v, L), 1, get(w, 'head.attention.out_proj.weight'), get(w, 'head.attention.out_proj.bias'), C, C);
  const m = mlpRef(w, 'head.mlp.', layerNormRef(h, 1, get(w, 'head.layernorm.weight'), get(w, 'head.layernorm.bias'), eps), 1, act);
  return { last: x, pooled: h.map((val, j) => val + m[j]) };
}

function checkAgainstReference(dir: string, w: Weights, family: 'clip' | 'siglip') {
  const { model, layout } = loadVisionTransformer(dir);
  expect(layout).toBe(family);
  const pixelsNchw = Rng.fromSeed(9).normalArray(3 * S * S);
  const pixels = tf.tidy(() => tf.transpose(tf.tensor4d(pixelsNchw, [1, 3, S, S]), [0, 2, 3, 1]) as tf.Tensor4D);
  const out = model.forward(pixels, { pooled: true });
  const ref = referenceForward(w, pixelsNchw, family);
  const diff = (a: Float32Array | Int32Array | Uint8Array, b: Float32Array) => b.reduce((m, v, i) => Math.max(m, Math.abs(a[i] - v)), 0);
  expect(diff(out.lastBlock.dataSync(), ref.last)).toBeLessThan(1e-4);
  if (ref.pooled) expect(diff(out.pooled!.dataSync(), ref.pooled)).toBeLessThan(1e-4);
  tf.dispose([pixels, out.lastBlock, out.pooled!]);
  model.dispose();
}

const asWritable = (w: Weights) => new Map([...w].map(([k, v]) => [k, { values: v.values, shape: v.shape }]));

beforeAll(async () => {
  await initBackend();
});

describe('Hugging Face layouts without fixtures: loading + forward vs a naive reference', () => {
  it('CLIPVisionModel (sharded CLIPModel checkpoint with text tower and position_ids)', () => {
    const dir = tempDir();
    const w = randomWeights({
      'vision_model.embeddings.class_embedding': [C],
      'vision_model.embeddings.patch_embedding.weight': [C, 3, P, P],
      'vision_model.embeddings.position_embedding.weight': [(S / P) ** 2 + 1, C],
      'vision_model.pre_layrnorm.weight': [C],
      'vision_model.pre_layrnorm.bias': [C],
      ...layerShapes('vision_model.'),
      'vision_model.post_layernorm.weight': [C],
      'vision_model.post_layernorm.bias': [C],
    }, Rng.fromSeed(1));
    const extra = new Map<string, { values: Float32Array; shape: number[] }>([
      ['text_model.embeddings.token_embedding.weight', { values: new Float32Array(6), shape: [3, 2] }],
      ['visual_projection.weight', { values: new Float32Array(4), shape: [2, 2] }],
      ['logit_scale', { values: new Float32Array(1), shape: [] }],
      ['vision_model.embeddings.position_ids', { values: new Float32Array(5), shape: [1, 5] }],
    ]);
    const all = new Map([...asWritable(w), ...extra]);
    const keys = [...all.keys()];
    const shard1 = new Map(keys.slice(0, 10).map((k) => [k, all.get(k)!]));
    const shard2 = new Map(keys.slice(10).map((k) => [k, all.get(k)!]));
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), shard1);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), shard2);
    const weightMap = Object.fromEntries([...shard1.keys()].map((k) => [k, 'model-00001-of-00002.safetensors']).concat([...shard2.keys()].map((k) => [k, 'model-00002-of-00002.safetensors'])));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      architectures: ['CLIPModel'], model_type: 'clip',
      vision_config: { hidden_size: C, intermediate_size: FF, num_hidden_layers: LAYERS, num_attention_heads: HEADS, image_size: S, patch_size: P },
    }));
    checkAgainstReference(dir, w, 'clip');
  });

  it('SiglipVisionModel: no class token, cls = attention-pooling head output', () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    const w = randomWeights({
      'vision_model.embeddings.patch_embedding.weight': [C, 3, P, P],
      'vision_model.embeddings.patch_embedding.bias': [C],
      'vision_model.embeddings.position_embedding.weight': [(S / P) ** 2, C],
      ...layerShapes('vision_model.'),
      'vision_model.post_layernorm.weight': [C],
      'vision_model.post_layernorm.bias': [C],
      'vision_model.head.probe': [1, 1, C],
      'vision_model.head.attention.in_proj_weight': [3 * C, C],
      'vision_model.head.attention.in_proj_bias': [3 * C],
      'vision_model.head.attention.out_proj.weight': [C, C],
      'vision_model.head.attention.out_proj.bias': [C],
      'vision_model.head.layernorm.weight': [C],
      'vision_model.head.layernorm.bias': [C],
      'vision_model.head.mlp.fc1.weight': [FF, C],
      'vision_model.head.mlp.fc1.bias': [FF],
      'vision_model.head.mlp.fc2.weight': [C, FF],
      'vision_model.head.mlp.fc2.bias': [C],
    }, Rng.fromSeed(2));
    writeSafetensors(join(dir, 'model.safetensors'), asWritable(w));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      architectures: ['SiglipVisionModel'], model_type: 'siglip_vision_model',
      hidden_size: C, intermediate_size: FF, num_hidden_layers: LAYERS, num_attention_heads: HEADS, image_size: S, patch_size: P,
    }));
    checkAgainstReference(dir, w, 'siglip');
  });
});
