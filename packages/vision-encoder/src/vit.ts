/**
 * The vision transformer, top to bottom: config, embeddings, attention, MLP, block, model. One implementation
 * serves three Hugging Face families; parameters keep each family's HF names so checkpoints load key for key:
 * - `instructblip`: EVA-ViT-g as `InstructBlipVisionModel`/`Blip2VisionModel` (spec §1.0): fused `qkv` with a
 *   [q | 0 | v] bias, `projection`, conv patch embedding with bias, CLS token, exact GELU, eps 1e-6.
 * - `clip`: `CLIPVisionModel`: separate q/k/v/out projections, bias-free patch embedding, `pre_layrnorm`, quick_gelu.
 * - `siglip`: `SiglipVisionModel`: no CLS token; its "cls" is the attention-pooling head's output.
 * Input pixels are NHWC `[B, H, W, 3]` (see preprocess.ts); the patch embedding is a matmul over flattened patches,
 * which equals PyTorch's stride-p convolution and is differentiable on every tfjs backend.
 */
import { z } from 'zod';
import { LayerNorm, Linear, ParameterStore, ShapeError, activation, attention, linear, mergeHeads, splitHeads, tf, type Init, type Rng } from '@bvllm/core';

export const vitConfigSchema = z
  .object({
    /** Parameter layout and block flavour (see the file comment). B-VLLM: `instructblip` (EVA-ViT-g, spec §1.0). */
    family: z.enum(['instructblip', 'clip', 'siglip']).default('instructblip'),
    /** Cv, the token width. EVA-ViT-g: 1408 (spec §1.0). */
    hiddenSize: z.number().int().positive().default(1408),
    /** MLP hidden width. EVA-ViT-g: int(1408 · 4.3637) = 6144. */
    intermediateSize: z.number().int().positive().default(6144),
    /** Number of blocks. EVA-ViT-g: 39. */
    numLayers: z.number().int().positive().default(39),
    /** Attention heads; Cv must divide by it. EVA-ViT-g: 16. */
    numHeads: z.number().int().positive().default(16),
    /** Input side in pixels; the position grid is imageSize / patchSize. B-VLLM runs EVA at 336 (spec §1.1). */
    imageSize: z.number().int().positive().default(224),
    /** Patch side in pixels. EVA-ViT-g: 14. */
    patchSize: z.number().int().positive().default(14),
    /** LayerNorm epsilon. EVA-ViT-g: 1e-6 (CLIP: 1e-5). */
    layerNormEps: z.number().positive().default(1e-6),
    /** HF `hidden_act`. EVA: `gelu` (erf); CLIP: `quick_gelu`; SigLIP: `gelu_pytorch_tanh`. */
    hiddenAct: z.enum(['gelu', 'quick_gelu', 'gelu_pytorch_tanh', 'gelu_new']).default('gelu'),
    /** `instructblip` only: whether the fused qkv has a bias (EVA's q_bias/v_bias). HF default: true. */
    qkvBias: z.boolean().default(true),
  })
  .strict()
  .refine((c) => c.hiddenSize % c.numHeads === 0, { message: 'hiddenSize must be a multiple of numHeads', path: ['numHeads'] })
  .refine((c) => c.imageSize % c.patchSize === 0, { message: 'imageSize must be a multiple of patchSize', path: ['patchSize'] });
export type VitConfig = z.infer<typeof vitConfigSchema>;
export type VitConfigInput = z.input<typeof vitConfigSchema>;

/** Everything the tower computes for a batch of B frames; L = tokens (N patches, plus 1 CLS unless SigLIP). */
export type VitOutput = {
  /** Output of the last block, no final norm: what EVA returns in LAVIS/B-VLLM (spec §1.0). [B, L, Cv] */
  lastBlock: tf.Tensor3D;
  /** `post_layernorm(lastBlock)` (LAVIS `ln_vision`; HF InstructBLIP/SigLIP `last_hidden_state`). [B, L, Cv] */
  postLayernorm?: tf.Tensor3D;
  /** HF `pooler_output`: EVA `LN_post(postLayernorm[:, 0])`, CLIP `postLayernorm[:, 0]`, SigLIP the pooling head. [B, Cv] */
  pooled?: tf.Tensor2D;
};

/** Weight init for training from scratch: N(0, 0.02) matrices and embeddings (ViT/BLIP practice), zero biases. */
const weightInit: Init = { kind: 'normal', std: 0.02 };

/** A Linear with the ViT's init; `zeros` when a checkpoint will overwrite everything anyway. */
function dense(store: ParameterStore, prefix: string, inF: number, outF: number, bias: boolean, init: Init, trainable: boolean): Linear {
  const layer = new Linear(store, prefix, inF, outF, { bias, init, trainable });
  // core's Linear starts biases uniform (PyTorch's default); ViT practice, and HF's _init_weights, zero them.
  if (layer.bias) tf.tidy(() => layer.bias!.assign(tf.zerosLike(layer.bias!)));
  return layer;
}

class Attention {
  private readonly qkv?: Linear;
  private readonly qkvProj: Linear[] = [];
  private readonly out: Linear;
  constructor(store: ParameterStore, prefix: string, private readonly config: VitConfig, init: Init, trainable: boolean) {
    const c = config.hiddenSize;
    if (config.family === 'instructblip') {
      // EVA fuses q, k, v into one matrix; its bias is [q_bias | 0 | v_bias] (the k third is zero in every checkpoint).
      this.qkv = dense(store, `${prefix}.qkv`, c, 3 * c, config.qkvBias, init, trainable);
      this.out = dense(store, `${prefix}.projection`, c, c, true, init, trainable);
    } else {
      for (const name of ['q_proj', 'k_proj', 'v_proj']) this.qkvProj.push(dense(store, `${prefix}.${name}`, c, c, true, init, trainable));
      this.out = dense(store, `${prefix}.out_proj`, c, c, true, init, trainable);
    }
  }

  /** `[B, L, Cv]` → `[B, L, Cv]`: bidirectional multi-head self-attention, no mask. */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const heads = this.config.numHeads;
      const [q, k, v] = this.qkv ? tf.split(this.qkv.apply(x), 3, -1) : this.qkvProj.map((p) => p.apply(x));
      const o = attention(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads));
      return this.out.apply(mergeHeads(o));
    });
  }
}

class Mlp {
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(store: ParameterStore, prefix: string, config: VitConfig, init: Init, trainable: boolean) {
    this.fc1 = dense(store, `${prefix}.fc1`, config.hiddenSize, config.intermediateSize, true, init, trainable);
    this.fc2 = dense(store, `${prefix}.fc2`, config.intermediateSize, config.hiddenSize, true, init, trainable);
    this.act = activation(config.hiddenAct);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.apply(this.act(this.fc1.apply(x))));
  }
}

/** Pre-LN block: `h += attn(LN1(h))`, `h += mlp(LN2(h))`; no layer-scale, no relative position bias (spec §1.0). */
class Block {
  private readonly norm1: LayerNorm;
  private readonly attn: Attention;
  private readonly norm2: LayerNorm;
  private readonly mlp: Mlp;
  constructor(store: ParameterStore, prefix: string, config: VitConfig, init: Init, trainable: boolean) {
    this.norm1 = new LayerNorm(store, `${prefix}.layer_norm1`, config.hiddenSize, config.layerNormEps, trainable);
    this.attn = new Attention(store, `${prefix}.self_attn`, config, init, trainable);
    this.norm2 = new LayerNorm(store, `${prefix}.layer_norm2`, config.hiddenSize, config.layerNormEps, trainable);
    this.mlp = new Mlp(store, `${prefix}.mlp`, config, init, trainable);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.apply(this.norm1.apply(x)));
      return tf.add(h, this.mlp.apply(this.norm2.apply(h)));
    });
  }
}

/** SigLIP's `SiglipMultiheadAttentionPoolingHead`: one learned probe attends over all tokens, then a residual MLP. */
class PoolingHead {
  private readonly probe: tf.Variable;
  private readonly inProjWeight: tf.Variable;
  private readonly inProjBias: tf.Variable;
  private readonly out: Linear;
  private readonly norm: LayerNorm;
  private readonly mlp: Mlp;
  constructor(store: ParameterStore, private readonly config: VitConfig, init: Init, trainable: boolean) {
    const c = config.hiddenSize;
    this.probe = store.create('head.probe', [1, 1, c], init, trainable);
    // torch.nn.MultiheadAttention keeps q, k, v stacked in one [3C, C] matrix.
    this.inProjWeight = store.create('head.attention.in_proj_weight', [3 * c, c], init, trainable);
    this.inProjBias = store.create('head.attention.in_proj_bias', [3 * c], { kind: 'zeros' }, trainable);
    this.out = dense(store, 'head.attention.out_proj', c, c, true, init, trainable);
    this.norm = new LayerNorm(store, 'head.layernorm', c, config.layerNormEps, trainable);
    this.mlp = new Mlp(store, 'head.mlp', config, init, trainable);
  }

  /** `[B, L, Cv]` (post-layernormed tokens) → `[B, Cv]`. */
  apply(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, , c] = x.shape as [number, number, number];
      const heads = this.config.numHeads;
      const [wq, wk, wv] = tf.split(this.inProjWeight, 3, 0);
      const [bq, bk, bv] = tf.split(this.inProjBias, 3, 0);
      const q = splitHeads(linear(tf.tile(this.probe, [b, 1, 1]), wq, bq), heads);
      const k = splitHeads(linear(x, wk, bk), heads);
      const v = splitHeads(linear(x, wv, bv), heads);
      const h = this.out.apply(mergeHeads(attention(q, k, v)));
      return tf.reshape(tf.add(h, this.mlp.apply(this.norm.apply(h))), [b, c]) as tf.Tensor2D;
    });
  }
}

export class VisionTransformer {
  readonly store: ParameterStore;
  /** Patches per side: imageSize / patchSize; N = grid². */
  readonly grid: number;
  private readonly hasCls: boolean;
  private readonly blocks: Block[] = [];
  private readonly preNorm?: LayerNorm;
  private readonly postNorm: LayerNorm;
  private readonly head?: PoolingHead;

  /** `init: 'zeros'` skips random init when a checkpoint is loaded right after. Parameters are trainable unless frozen. */
  constructor(readonly config: VitConfig, rng: Rng, options: { init?: 'random' | 'zeros'; trainable?: boolean } = {}) {
    const trainable = options.trainable ?? true;
    const init: Init = options.init === 'zeros' ? { kind: 'zeros' } : weightInit;
    const { family, hiddenSize: c, patchSize: p } = config;
    this.store = new ParameterStore(`vision-${family}`, rng);
    this.grid = config.imageSize / p;
    this.hasCls = family !== 'siglip';
    const tokens = this.grid * this.grid + (this.hasCls ? 1 : 0);
    const s = this.store;
    // Shapes are HF's own (CLIP's class embedding is [C], its position table an nn.Embedding [L, C]; EVA's are [1, 1, C], [1, L, C]).
    if (family === 'instructblip') s.create('embeddings.class_embedding', [1, 1, c], init, trainable);
    if (family === 'clip') s.create('embeddings.class_embedding', [c], init, trainable);
    s.create('embeddings.patch_embedding.weight', [c, 3, p, p], init, trainable);
    if (family !== 'clip') s.create('embeddings.patch_embedding.bias', [c], { kind: 'zeros' }, trainable);
    if (family === 'instructblip') s.create('embeddings.position_embedding', [1, tokens, c], init, trainable);
    else s.create('embeddings.position_embedding.weight', [tokens, c], init, trainable);
    if (family === 'clip') this.preNorm = new LayerNorm(s, 'pre_layrnorm', c, config.layerNormEps, trainable);
    for (let i = 0; i < config.numLayers; i++) this.blocks.push(new Block(s, `encoder.layers.${i}`, config, init, trainable));
    this.postNorm = new LayerNorm(s, 'post_layernorm', c, config.layerNormEps, trainable);
    if (family === 'siglip') this.head = new PoolingHead(s, config, init, trainable);
  }

  /** Number of tokens per frame: N patches plus the CLS token (none for SigLIP). */
  get numTokens(): number {
    return this.grid * this.grid + (this.hasCls ? 1 : 0);
  }

  /** `[B, S, S, 3]` NHWC → `[B, L, Cv]` token embeddings (CLS first), position embeddings added. */
  embed(pixels: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const { hiddenSize: c, patchSize: p } = this.config;
      const b = pixels.shape[0];
      const g = this.grid;
      // [B, S, S, 3] → [B·G, p, G, p·3] → [B·G, G, p, p·3] → [B, N, p·p·3]: patch (gy, gx) flattened as (ky, kx, ch).
      const patches = tf.reshape(tf.transpose(tf.reshape(pixels, [b * g, p, g, p * 3]), [0, 2, 1, 3]), [b, g * g, p * p * 3]);
      // PyTorch conv weight [C, 3, p, p] → [C, p, p, 3] to match the (ky, kx, ch) order above.
      const weight = tf.reshape(tf.transpose(this.store.get('embeddings.patch_embedding.weight'), [0, 2, 3, 1]), [c, p * p * 3]);
      const bias = this.store.has('embeddings.patch_embedding.bias') ? this.store.get('embeddings.patch_embedding.bias') : undefined;
      let x: tf.Tensor = linear(patches, weight, bias);
      if (this.hasCls) x = tf.concat([tf.tile(tf.reshape(this.store.get('embeddings.class_embedding'), [1, 1, c]), [b, 1, 1]), x], 1);
      const pos = this.store.has('embeddings.position_embedding') ? this.store.get('embeddings.position_embedding') : this.store.get('embeddings.position_embedding.weight');
      return tf.add(x, tf.reshape(pos, [1, this.numTokens, c])) as tf.Tensor3D;
    });
  }

  /**
   * `pixels` NHWC `[B, S, S, 3]` (S = imageSize) → {@link VitOutput}. Only what `want` names is computed. No
   * dataSync inside, so gradients flow to every parameter.
   */
  forward(pixels: tf.Tensor4D, want: { postLayernorm?: boolean; pooled?: boolean } = {}): VitOutput {
    const s = this.config.imageSize;
    if (pixels.rank !== 4 || pixels.shape[1] !== s || pixels.shape[2] !== s || pixels.shape[3] !== 3)
      throw new ShapeError('pixels', ['B', s, s, 3], pixels.shape, 'NHWC at the encoder image size');
    return tf.tidy(() => {
      let h: tf.Tensor = this.embed(pixels);
      if (this.preNorm) h = this.preNorm.apply(h);
      for (const block of this.blocks) h = block.apply(h);
      const out: VitOutput = { lastBlock: h as tf.Tensor3D };
      if (!want.postLayernorm && !want.pooled) return out;
      const normed = this.postNorm.apply(h) as tf.Tensor3D;
      if (want.postLayernorm) out.postLayernorm = normed;
      if (want.pooled) {
        const [b, , c] = normed.shape;
        if (this.head) out.pooled = this.head.apply(normed);
        else if (this.config.family === 'clip') out.pooled = tf.reshape(tf.slice(normed, [0, 0, 0], [b, 1, c]), [b, c]) as tf.Tensor2D;
        // HF InstructBLIP applies post_layernorm a second time to the CLS row for its pooler output.
        else out.pooled = this.postNorm.apply(tf.reshape(tf.slice(normed, [0, 0, 0], [b, 1, c]), [b, c])) as tf.Tensor2D;
      }
      return out;
    });
  }

  dispose(): void {
    this.store.dispose();
  }
}
