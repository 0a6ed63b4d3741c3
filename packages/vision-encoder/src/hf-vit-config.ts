/**
 * Hugging Face vision `config.json` → {@link VitConfig}. We don't own that format: it is read leniently, only the
 * fields the ViT uses, with each family's HF defaults for fields a saved config may omit (composite configs store
 * `vision_config` as a diff against the defaults).
 */
import { ConfigError } from '@bvllm/core';
import { vitConfigSchema, type VitConfig } from './vit.js';

/** Checkpoint key layouts the loader understands; `lavis` is EVA's original naming, same model as `instructblip`. */
export type VitLayout = 'instructblip' | 'lavis' | 'clip' | 'siglip';

const familyDefaults: Record<VitConfig['family'], Omit<VitConfig, 'family'>> = {
  instructblip: { hiddenSize: 1408, intermediateSize: 6144, numLayers: 39, numHeads: 16, imageSize: 224, patchSize: 14, layerNormEps: 1e-6, hiddenAct: 'gelu', qkvBias: true },
  clip: { hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, imageSize: 224, patchSize: 32, layerNormEps: 1e-5, hiddenAct: 'quick_gelu', qkvBias: true },
  siglip: { hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, imageSize: 224, patchSize: 16, layerNormEps: 1e-6, hiddenAct: 'gelu_pytorch_tanh', qkvBias: true },
};

/** The family named by `model_type` (vision or composite) or `architectures`. */
export function familyOf(raw: Record<string, unknown>): VitConfig['family'] | undefined {
  const names = [raw.model_type, ...(Array.isArray(raw.architectures) ? raw.architectures : [])].map((v) => String(v ?? '').toLowerCase());
  if (names.some((n) => /instructblip|blip[-_]?2/.test(n))) return 'instructblip';
  if (names.some((n) => n.startsWith('siglip'))) return 'siglip';
  if (names.some((n) => n.startsWith('clip'))) return 'clip';
  return undefined;
}

export function vitConfigFromHf(raw: Record<string, unknown>, family: VitConfig['family'], overrides: { imageSize?: number } = {}): VitConfig {
  const vision = (typeof raw.vision_config === 'object' && raw.vision_config !== null ? raw.vision_config : raw) as Record<string, unknown>;
  const d = familyDefaults[family];
  const candidate = {
    family,
    hiddenSize: vision.hidden_size ?? d.hiddenSize,
    intermediateSize: vision.intermediate_size ?? d.intermediateSize,
    numLayers: vision.num_hidden_layers ?? d.numLayers,
    numHeads: vision.num_attention_heads ?? d.numHeads,
    imageSize: overrides.imageSize ?? vision.image_size ?? d.imageSize,
    patchSize: vision.patch_size ?? d.patchSize,
    layerNormEps: vision.layer_norm_eps ?? d.layerNormEps,
    hiddenAct: vision.hidden_act ?? d.hiddenAct,
    qkvBias: vision.qkv_bias ?? d.qkvBias,
  };
  const parsed = vitConfigSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`vision config.json: ${issue.path.join('.')}: ${issue.message}`, issue.path);
  }
  return parsed.data;
}
