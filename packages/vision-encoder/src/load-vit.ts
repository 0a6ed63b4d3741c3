/**
 * Loading a ViT from a Hugging Face folder (`config.json` + `model.safetensors`, or shards with an index): pick
 * the key table, map keys, fuse LAVIS biases, resize position embeddings to the requested image size (once, at
 * load, as LAVIS does), then a strict load that lists every missing, unexpected and mis-shaped key.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, Rng, TensorSource, applyKeyRules, readHfConfig, tf, type KeyRule, parseConfig } from '@bvllm/core';
import { clipVisionKeys } from './clip-keys.js';
import { familyOf, vitConfigFromHf, type VitLayout } from './hf-vit-config.js';
import { instructBlipVisionKeys } from './instructblip-keys.js';
import { fuseLavisQkvBias, lavisVisionKeys } from './lavis-keys.js';
import { interpolatePositions } from './pos-interp.js';
import { siglipVisionKeys } from './siglip-keys.js';
import { VisionTransformer, vitConfigSchema, type VitConfig, type VitConfigInput } from './vit.js';

export const keyTables: Record<VitLayout, readonly KeyRule[]> = {
  instructblip: instructBlipVisionKeys,
  lavis: lavisVisionKeys,
  clip: clipVisionKeys,
  siglip: siglipVisionKeys,
};

export interface LoadVitOptions {
  /** Checkpoint key layout; detected from the keys (LAVIS) and `config.json` when absent. */
  layout?: VitLayout;
  /** Run at this image size instead of the checkpoint's (B-VLLM: 336 for a 224 checkpoint, spec §1.0). */
  imageSize?: number;
  /** Weights file (or the base name of a sharded index) inside the folder. Default `model.safetensors`. */
  weightsFile?: string;
  /** The ViT config, for folders without `config.json` (a LAVIS `eva_vit_g` export). */
  config?: VitConfigInput;
  /** Keep the parameters trainable (default false: B-VLLM freezes the encoder, spec §2). */
  trainable?: boolean;
}

export function loadVisionTransformer(dir: string, options: LoadVitOptions = {}): { model: VisionTransformer; layout: VitLayout } {
  const source = TensorSource.fromDir(dir, options.weightsFile ?? 'model.safetensors');
  try {
    const keys = source.keys();
    const hasConfigFile = existsSync(join(dir, 'config.json'));
    const raw = hasConfigFile ? readHfConfig(dir) : {};
    const layout: VitLayout | undefined =
      options.layout ?? (keys.some((k) => /(^|\.)blocks\.\d+\.attn\.q_bias$/.test(k)) ? 'lavis' : familyOf(raw));
    if (!layout) throw new ConfigError(`${dir}: cannot tell the checkpoint layout from config.json; pass layout (instructblip, lavis, clip, siglip)`, ['layout']);
    const family: VitConfig['family'] = layout === 'lavis' ? 'instructblip' : layout;
    let config: VitConfig;
    if (options.config) config = parseConfig(vitConfigSchema, { ...options.config, family, ...(options.imageSize ? { imageSize: options.imageSize } : {}) }, `${dir}: vision config`);
    else if (hasConfigFile) config = vitConfigFromHf(raw, family, { imageSize: options.imageSize });
    else throw new ConfigError(`${dir}: no config.json; pass config`, ['config']);

    const model = new VisionTransformer(config, Rng.fromSeed(0), { init: 'zeros', trainable: options.trainable ?? false });
    let tensors = applyKeyRules(source.readAll(), keyTables[layout]).tensors;
    if (layout === 'lavis') tensors = fuseLavisQkvBias(tensors);
    try {
      resizePositions(tensors, model);
      model.store.load(tensors);
    } catch (error) {
      model.dispose();
      throw error;
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    return { model, layout };
  } finally {
    source.close();
  }
}

/** Replaces a checkpoint's position table with one resized to the model's grid when only the grid differs. */
function resizePositions(tensors: Map<string, tf.Tensor>, model: VisionTransformer): void {
  const key = model.store.has('embeddings.position_embedding') ? 'embeddings.position_embedding' : 'embeddings.position_embedding.weight';
  const pos = tensors.get(key);
  const target = model.store.get(key);
  if (!pos || tf.util.arraysEqual(pos.shape, target.shape)) return;
  const dim = model.config.hiddenSize;
  const prefix = model.config.family === 'siglip' ? 0 : 1;
  const rows = pos.size / dim;
  const inGrid = Math.round(Math.sqrt(rows - prefix));
  // Anything but a square grid of the right width is a mismatch the strict load reports.
  if (pos.shape[pos.rank - 1] !== dim || inGrid * inGrid !== rows - prefix) return;
  const resized = interpolatePositions(pos.dataSync() as Float32Array, dim, [inGrid, inGrid], [model.grid, model.grid], prefix);
  tensors.set(key, tf.tensor(resized, target.shape));
  pos.dispose();
}
